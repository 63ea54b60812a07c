with

source as (

    select * from {{ source('scb', 'land_area') }}

),

series_breaks as (

    select * from {{ ref('series_breaks') }}
    where raw_table = 'land_area'

),

renamed as (

    select
        region as region_code,
        {{ region_level('region') }} as region_level,
        contentscode as contents_code,
        case contentscode
            when 'BE0101U3' then 'land_area_km2'
            else 'unknown:' || contentscode
        end as measure,
        cast(tid as integer) as year,
        make_date(cast(tid as integer), 1, 1) as period_start,
        cast(value as double) as land_area_km2,
        status,
        _source_name as source_name,
        _source_table as source_table,
        _load_id as load_id,
        _synthetic as is_synthetic,
        _loaded_at as loaded_at
    from source

),

final as (

    select
        renamed.*,
        series_breaks.source_series
    from renamed
    left join series_breaks
        on
            renamed.source_table = series_breaks.source_table
            and renamed.year between series_breaks.year_from and coalesce(series_breaks.year_to, 9999)

)

select * from final
