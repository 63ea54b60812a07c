-- Age structure per municipality, study area and county and year: population by sex, median age, the shares
-- 0-19 / 20-64 / 65+ / 80+, the demographic dependency ratio (0-19 + 65+) / (20-64), and the change since the
-- latest earlier year with complete age data (null when there is none). The median age interpolates linearly
-- within the median single year of age, treating age a as the interval [a, a+1) (people spread evenly over
-- their year of age). Null with `completeness_note` where the area's age data is incomplete.
with

cells as (

    select * from {{ ref('int_population__age_by_area') }}

),

cumulative as (

    select
        area_type,
        area_code,
        year,
        sex,
        age,
        population,
        sum(population) over (
            partition by area_type, area_code, year, sex order by age
            rows between unbounded preceding and current row
        ) as population_to_age,
        sum(population) over (partition by area_type, area_code, year, sex) as population_all_ages
    from cells
    where population is not null

),

medians as (

    select
        area_type,
        area_code,
        year,
        sex,
        -- the first age whose cumulative count reaches half: its lower bound plus the fraction of it needed
        min_by(
            age + (population_all_ages / 2.0 - (population_to_age - population)) / nullif(population, 0),
            age
        ) as median_age
    from cumulative
    where population_to_age >= population_all_ages / 2.0
    group by area_type, area_code, year, sex

),

area_years as (

    select
        area_type,
        area_code,
        any_value(area_name) as area_name,
        any_value(county_code) as county_code,
        year,
        -- ordered aggregates: a fixed summation order keeps rebuilt marts byte-identical
        sum(population order by age) filter (where sex = 'total') as population_total,
        sum(population order by age) filter (where sex = 'men') as population_men,
        sum(population order by age) filter (where sex = 'women') as population_women,
        sum(population order by age) filter (where sex = 'total' and age <= 19) as population_0_19,
        sum(population order by age) filter (where sex = 'total' and age between 20 and 64) as population_20_64,
        sum(population order by age) filter (where sex = 'total' and age >= 65) as population_65_plus,
        sum(population order by age) filter (where sex = 'total' and age >= 80) as population_80_plus,
        any_value(members_with_data) as members_with_data,
        any_value(members_expected) as members_expected,
        bool_and(is_complete) as is_complete,
        any_value(completeness_note) as completeness_note,
        {{ lineage_agg('lineage') }} as lineage
    from cells
    group by area_type, area_code, year

),

indicators as (

    select
        area_years.area_type,
        area_years.area_code,
        area_years.area_name,
        area_years.county_code,
        area_years.year,
        area_years.population_total,
        area_years.population_men,
        area_years.population_women,
        median_total.median_age,
        median_men.median_age as median_age_men,
        median_women.median_age as median_age_women,
        100.0 * area_years.population_0_19 / nullif(area_years.population_total, 0) as share_0_19_pct,
        100.0 * area_years.population_20_64 / nullif(area_years.population_total, 0) as share_20_64_pct,
        100.0 * area_years.population_65_plus / nullif(area_years.population_total, 0) as share_65_plus_pct,
        100.0 * area_years.population_80_plus / nullif(area_years.population_total, 0) as share_80_plus_pct,
        (area_years.population_0_19 + area_years.population_65_plus) / nullif(area_years.population_20_64, 0)
            as dependency_ratio,
        area_years.members_with_data,
        area_years.members_expected,
        area_years.is_complete,
        area_years.completeness_note,
        area_years.lineage
    from area_years
    left join medians as median_total
        on
            area_years.area_type = median_total.area_type
            and area_years.area_code = median_total.area_code
            and area_years.year = median_total.year
            and median_total.sex = 'total'
    left join medians as median_men
        on
            area_years.area_type = median_men.area_type
            and area_years.area_code = median_men.area_code
            and area_years.year = median_men.year
            and median_men.sex = 'men'
    left join medians as median_women
        on
            area_years.area_type = median_women.area_type
            and area_years.area_code = median_women.area_code
            and area_years.year = median_women.year
            and median_women.sex = 'women'

),

-- the latest earlier year with complete age data, per area
earlier as (

    select
        area_type,
        area_code,
        year,
        lag(year) over (partition by area_type, area_code order by year) as compare_year
    from indicators
    where is_complete

),

final as (

    select
        indicators.area_type,
        indicators.area_code,
        indicators.area_name,
        indicators.county_code,
        indicators.year,
        cast(indicators.population_total as bigint) as population_total,
        cast(indicators.population_men as bigint) as population_men,
        cast(indicators.population_women as bigint) as population_women,
        indicators.median_age,
        indicators.median_age_men,
        indicators.median_age_women,
        indicators.share_0_19_pct,
        indicators.share_20_64_pct,
        indicators.share_65_plus_pct,
        indicators.share_80_plus_pct,
        indicators.dependency_ratio,
        earlier.compare_year,
        cast(indicators.population_total - previous.population_total as bigint) as population_change,
        indicators.median_age - previous.median_age as median_age_change,
        indicators.share_65_plus_pct - previous.share_65_plus_pct as share_65_plus_change_pp,
        indicators.dependency_ratio - previous.dependency_ratio as dependency_ratio_change,
        indicators.members_with_data,
        indicators.members_expected,
        indicators.is_complete,
        indicators.completeness_note,
        -- a change reads the earlier year too: both years feed the row
        {{ provenance_columns(lineage_merge(['indicators.lineage', 'previous.lineage'])) }}
    from indicators
    left join earlier
        on
            indicators.area_type = earlier.area_type
            and indicators.area_code = earlier.area_code
            and indicators.year = earlier.year
    left join indicators as previous
        on
            earlier.area_type = previous.area_type
            and earlier.area_code = previous.area_code
            and earlier.compare_year = previous.year

)

select * from final
