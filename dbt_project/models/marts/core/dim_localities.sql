with

locality_values as (

    select * from {{ ref('int_localities__values') }}

),

locality_names as (

    select * from {{ ref('int_seed__locality_names') }}

),

municipalities as (

    select * from {{ ref('dim_municipalities') }}

),

categories as (

    select * from {{ ref('int_municipality_categories') }}

),

latest as (

    select *
    from locality_values
    where is_latest_of_key  -- a code renumbered since is the same locality, not another one

),

final as (

    select
        latest.locality_code,
        locality_names.locality_name,
        latest.municipality_code,
        municipalities.municipality_name,
        latest.county_code,
        municipalities.la_region,
        municipalities.is_study_area,
        municipalities.municipality_category,
        latest.year as latest_year,
        cast(latest.population as bigint) as latest_population,
        latest.land_area_ha,
        latest.land_area_km2,
        latest.density_per_km2,
        -- the municipality category rests on populations and, where the proxy decided it, the OD matrix
        {{ provenance_columns(lineage_merge(['latest.lineage', 'categories.category_lineage'])) }}
    from latest
    left join locality_names
        on latest.locality_code = locality_names.locality_code
    left join municipalities
        on latest.municipality_code = municipalities.municipality_code
    left join categories
        on latest.municipality_code = categories.municipality_code

)

select * from final
