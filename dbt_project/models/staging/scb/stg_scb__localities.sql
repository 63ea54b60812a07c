with

source as (

    select * from {{ source('scb', 'localities') }}

),

renamed as (

    select
        tatort as locality_code,
        left(tatort, 4) as municipality_code,
        left(tatort, 2) as county_code,
        contentscode as contents_code,
        case contentscode
            when '000003F7' then 'population'
            when '000003F9' then 'land_area_ha'
            else 'unknown:' || contentscode
        end as measure,
        cast(tid as integer) as year,
        make_date(cast(tid as integer), 1, 1) as period_start,
        make_date(cast(tid as integer), 12, 31) as reference_date,
        cast(value as double) as value,
        'tatort_delineation_' || tid as source_series,
        {{ raw_lineage_columns() }}
    from source

)

select * from renamed
