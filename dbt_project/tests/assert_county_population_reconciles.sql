-- County population = sum of its municipalities where the series is additive (before 2025, TAB638);
-- from 2025 (CKM, TAB5557) within the relative tolerance given by the series_breaks seed / var.
with

regions as (

    select * from {{ ref('fct_population') }}

),

series_breaks as (

    select * from {{ ref('series_breaks') }}
    where raw_table = 'population'

),

municipal_sums as (

    select
        county_code,
        year,
        sum(population) as sum_of_municipalities,
        count(*) as municipalities
    from regions
    where region_level = 'municipality'
    group by county_code, year

),

compared as (

    select
        regions.region_code,
        regions.year,
        regions.population as county_population,
        municipal_sums.sum_of_municipalities,
        regions.source_series,
        case
            when series_breaks.totals_additive then 0
            else greatest(coalesce(series_breaks.reconciliation_tolerance, 0), {{ var('ckm_relative_tolerance') }})
        end as relative_tolerance
    from regions
    inner join municipal_sums
        on
            regions.region_code = municipal_sums.county_code
            and regions.year = municipal_sums.year
    left join series_breaks
        on regions.source_series = series_breaks.source_series
    where regions.region_level = 'county'

)

select *
from compared
where abs(county_population - sum_of_municipalities) > relative_tolerance * county_population
