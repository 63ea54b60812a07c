-- One row per locality and delineation year: population, change since the previous delineation (where the
-- locality has more than one year), land area, density and the municipality context.
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

municipal_population as (

    select * from {{ ref('int_population__regions') }}
    where region_level = 'municipality'

),

final as (

    select
        locality_values.locality_code,
        -- a code renumbered since has no name of its own in the seed: the locality's (key's) name
        coalesce(locality_names.locality_name, key_names.locality_name) as locality_name,
        locality_values.year,
        cast(locality_values.population as bigint) as population,
        locality_values.previous_year,
        cast(locality_values.previous_population as bigint) as previous_population,
        cast(locality_values.population - locality_values.previous_population as bigint) as population_change,
        100.0 * {{ safe_divide('locality_values.population - locality_values.previous_population',
                               'locality_values.previous_population') }} as growth_pct,
        100.0 * (
            power(
                {{ safe_divide('locality_values.population', 'locality_values.previous_population') }},
                1.0 / nullif(locality_values.year - locality_values.previous_year, 0)
            ) - 1
        ) as growth_pct_per_year,
        locality_values.land_area_ha,
        locality_values.land_area_km2,
        locality_values.density_per_km2,
        locality_values.municipality_code,
        municipalities.municipality_name,
        municipalities.county_code,
        municipalities.la_region,
        municipalities.is_study_area,
        municipalities.municipality_category,
        cast(municipal_population.population as bigint) as municipality_population,
        {{ safe_divide('locality_values.population', 'municipal_population.population') }}
            as share_of_municipality_population,
        locality_values.locality_key,
        locality_values.previous_locality_code,
        {{ provenance_columns(lineage_merge(['locality_values.lineage', 'categories.category_lineage',
                                            'municipal_population.lineage'])) }}
    from locality_values
    left join locality_names
        on locality_values.locality_code = locality_names.locality_code
    left join locality_names as key_names
        on locality_values.locality_key = key_names.locality_code
    left join municipalities
        on locality_values.municipality_code = municipalities.municipality_code
    left join categories
        on locality_values.municipality_code = categories.municipality_code
    left join municipal_population
        on
            locality_values.municipality_code = municipal_population.region_code
            and locality_values.year = municipal_population.year

)

select * from final
