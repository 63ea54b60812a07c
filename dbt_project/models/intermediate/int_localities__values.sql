-- Locality x delineation year with population and land area side by side, the locality key that follows code
-- changes between delineations (seed locality_code_changes; one hop), and the previous delineation of the same
-- key for growth.
with

localities as (

    select * from {{ ref('stg_scb__localities') }}

),

code_changes as (

    select * from {{ ref('locality_code_changes') }}

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
    -- a code that is not part of a delineation ('..' in every cell of that year) is no locality that year
    having max(value) is not null

),

keyed as (

    select
        pivoted.*,
        coalesce(code_changes.to_code, pivoted.locality_code) as locality_key
    from pivoted
    left join code_changes
        on
            pivoted.locality_code = code_changes.from_code
            and pivoted.year = code_changes.from_year

),

with_previous as (

    select
        * exclude (lineage),
        land_area_ha / 100.0 as land_area_km2,
        {{ safe_divide('population', 'land_area_ha / 100.0') }} as density_per_km2,
        lag(year) over (partition by locality_key order by year) as previous_year,
        lag(population) over (partition by locality_key order by year) as previous_population,
        lag(locality_code) over (partition by locality_key order by year) as previous_locality_code,
        row_number() over (partition by locality_key order by year desc) = 1 as is_latest_of_key,
        -- the previous delineation's figures are in the row too (growth)
        {{ lineage_merge(['lineage', 'lag(lineage) over (partition by locality_key order by year)']) }} as lineage
    from keyed

)

select * from with_previous
