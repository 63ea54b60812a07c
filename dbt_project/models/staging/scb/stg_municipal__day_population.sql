with

source as (

    select * from {{ source('municipal', 'municipal_day_population') }}

),

renamed as (

    select
        period,
        try_cast(left(period, 4) as integer) as year,
        district,
        sex as sex_label,
        sni_group as sni_group_label,
        municipality,
        cast(value as double) as employed,
        {{ raw_lineage_columns() }}
    from source

)

select * from renamed
