-- Population change per area over the horizons (years back) and explicit periods set in vars.
-- One row per area x end year x horizon label.
with

population as (

    select * from {{ ref('int_population__by_area') }}

),

horizons as (

    select unnest({{ var('growth_horizons') }}) as horizon_years

),

periods as (

    select unnest({{ var('growth_periods') }}) as period

),

pairs as (

    select
        population.area_type,
        population.area_code,
        population.year as end_year,
        population.year - horizons.horizon_years as start_year,
        cast(horizons.horizon_years as varchar) || 'y' as horizon_label,
        horizons.horizon_years
    from population
    cross join horizons

    union all

    select distinct
        population.area_type,
        population.area_code,
        cast(periods.period['end'] as integer) as end_year,
        cast(periods.period['start'] as integer) as start_year,
        cast(periods.period['start'] as varchar) || '-' || cast(periods.period['end'] as varchar) as horizon_label,
        cast(periods.period['end'] as integer) - cast(periods.period['start'] as integer) as horizon_years
    from population
    cross join periods

),

joined as (

    select
        pairs.area_type,
        pairs.area_code,
        end_population.area_name,
        pairs.horizon_label,
        pairs.horizon_years,
        pairs.start_year,
        pairs.end_year,
        start_population.population as population_start,
        end_population.population as population_end,
        end_population.population - start_population.population as population_change,
        100.0
        * {{ safe_divide('end_population.population - start_population.population', 'start_population.population') }}
            as growth_pct,
        100.0
        * (
            power(
                {{ safe_divide('end_population.population', 'start_population.population') }}, 1.0 / pairs.horizon_years
            )
            - 1
        )
            as growth_pct_per_year,
        start_population.source_series as source_series_start,
        end_population.source_series as source_series_end,
        coalesce(start_population.source_series, '') != coalesce(end_population.source_series, '')
            as crosses_series_break,
        -- a group's growth is only as complete as its less complete end
        least(start_population.members_with_data, end_population.members_with_data) as members_with_data,
        end_population.members_expected,
        -- members formed during the period: no figure at the start (their territory is in another member's)
        start_population.members_not_yet_formed - end_population.members_not_yet_formed as members_excluded,
        case
            when start_population.members_not_yet_formed > end_population.members_not_yet_formed
                then 'start year ' || cast(pairs.start_year as varchar) || ': ' || start_population.series_note
        end as series_note,
        start_population.is_complete and end_population.is_complete as is_complete,
        start_population.is_synthetic or end_population.is_synthetic as is_synthetic,
        {{ lineage_merge(['start_population.lineage', 'end_population.lineage']) }} as lineage
    from pairs
    inner join population as start_population
        on
            pairs.area_type = start_population.area_type
            and pairs.area_code = start_population.area_code
            and pairs.start_year = start_population.year
    inner join population as end_population
        on
            pairs.area_type = end_population.area_type
            and pairs.area_code = end_population.area_code
            and pairs.end_year = end_population.year

)

select * from joined
