-- Locality x delineation year with population and land area side by side, plus the previous delineation
-- for growth.
with

localities as (

    select * from {{ ref('stg_scb__localities') }}

),

pivoted as (

    select
        locality_code,
        municipality_code,
        county_code,
        year,
        max(case when measure = 'population' then value end) as population,
        max(case when measure = 'land_area_ha' then value end) as land_area_ha,
        bool_or(is_synthetic) as is_synthetic,
        {{ lineage_agg('lineage') }} as lineage
    from localities
    group by locality_code, municipality_code, county_code, year

),

with_previous as (

    select
        * exclude (lineage),
        land_area_ha / 100.0 as land_area_km2,
        {{ safe_divide('population', 'land_area_ha / 100.0') }} as density_per_km2,
        lag(year) over (partition by locality_code order by year) as previous_year,
        lag(population) over (partition by locality_code order by year) as previous_population,
        -- the previous delineation's figures are in the row too (growth)
        {{ lineage_merge(['lineage', 'lag(lineage) over (partition by locality_code order by year)']) }} as lineage
    from pivoted

)

select * from with_previous
