with

regions as (

    select * from {{ ref('int_population__regions') }}

),

municipalities as (

    select * from {{ ref('municipalities') }}

),

counties as (

    select * from {{ ref('counties') }}

),

final as (

    select
        regions.region_code,
        regions.region_level,
        case
            when regions.region_level = 'country' then 'Sverige'
            when regions.region_level = 'county' then counties.county_name_sv
            else municipalities.municipality_name
        end as region_name,
        regions.county_code,
        regions.year,
        regions.period_start,
        regions.reference_date,
        cast(regions.population as bigint) as population,
        regions.status,
        regions.source_series,
        regions.source_table,
        {{ provenance_columns('regions.lineage') }}
    from regions
    left join municipalities
        on regions.region_code = municipalities.municipality_code
    left join counties
        on regions.region_code = counties.county_code

)

select * from final
