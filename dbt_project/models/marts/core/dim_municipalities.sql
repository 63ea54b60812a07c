with

municipalities as (

    select * from {{ ref('municipalities') }}

),

counties as (

    select * from {{ ref('counties') }}

),

categories as (

    select * from {{ ref('int_municipality_categories') }}

),

land_area as (

    select
        region_code as municipality_code,
        year as land_area_year,
        land_area_km2,
        lineage
    from {{ ref('stg_scb__land_area') }}
    where region_level = 'municipality'
    qualify row_number() over (partition by region_code order by year desc) = 1

),

final as (

    select
        municipalities.municipality_code,
        municipalities.municipality_name,
        municipalities.county_code,
        counties.county_name_sv as county_name,
        municipalities.la_region,
        municipalities.la_vintage,
        municipalities.study_area as is_study_area,
        categories.municipality_code is not null as is_in_region_set,
        categories.category as municipality_category,
        categories.category_basis,
        categories.category_basis_note,
        categories.category_is_synthetic,
        categories.minutes_by_car as minutes_by_car_to_k1,
        categories.commuting_share_to_k1,
        categories.population_year as latest_population_year,
        cast(categories.population as bigint) as latest_population,
        land_area.land_area_year,
        land_area.land_area_km2,
        {{ safe_divide('categories.population', 'land_area.land_area_km2') }} as density_per_km2,
        {{ provenance_columns(lineage_merge(['categories.lineage', 'land_area.lineage'])) }}
    from municipalities
    left join counties
        on municipalities.county_code = counties.county_code
    left join categories
        on municipalities.municipality_code = categories.municipality_code
    left join land_area
        on municipalities.municipality_code = land_area.municipality_code

)

select * from final
