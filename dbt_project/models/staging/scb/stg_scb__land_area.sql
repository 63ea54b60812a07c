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
        {{ raw_lineage_columns() }}
    from source

),

final as (

    {{ select_with_source_series('renamed') }}

)

select * from final
