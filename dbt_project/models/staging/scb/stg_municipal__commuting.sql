with

source as (

    select * from {{ source('municipal', 'municipal_commuting') }}

),

renamed as (

    select
        flow_type,
        district,
        area,
        period,
        try_cast(left(period, 4) as integer) as year,
        municipality,
        cast(value as double) as persons,
        {{ raw_lineage_columns() }}
    from source

)

select * from renamed
