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
        cast(value as double) as employed,
        status,
        _source_name as source_name,
        _source_table as source_table,
        _load_id as load_id,
        _synthetic as is_synthetic,
        _loaded_at as loaded_at
    from source

)

select * from renamed
