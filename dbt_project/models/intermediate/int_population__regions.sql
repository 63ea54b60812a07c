-- Total population per region and year: one row per region x year from the raw sources
-- (TAB638 rows carry the age total tot, civil status and sex eliminated; TAB5557 rows carry the totals SC / TotSA).
with

population as (

    select * from {{ ref('stg_scb__population') }}

),

totals as (

    select
        region_code,
        region_level,
        {{ county_code('region_code') }} as county_code,
        year,
        period_start,
        reference_date,
        population,
        status,
        source_series,
        source_table,
        is_synthetic,
        lineage
    from population
    where
        measure = 'population'
        and coalesce(civil_status_code, 'SC') = 'SC'
        and coalesce(age_code, 'TotSA') in ('TotSA', 'tot')  -- TAB5557's and TAB638's age totals
        and population is not null  -- cells published as '..' (not available) carry no number
    qualify row_number() over (partition by region_code, year order by loaded_at desc, source_table asc) = 1

)

select * from totals
