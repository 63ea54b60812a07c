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
        cast(value as double) as persons,
        status,
        _source_name as source_name,
        _source_table as source_table,
        _load_id as load_id,
        _synthetic as is_synthetic,
        _loaded_at as loaded_at
    from source

)

select * from renamed
