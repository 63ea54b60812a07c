-- Population by five-year age group (0-4 ... 95-99, 100+) and sex (men, women, total) per municipality, study
-- area and county and year: the population pyramid. Shares are of the area's whole population (both sexes, all
-- ages), so the men's and women's bars of a pyramid add up to 100 %.
with

cells as (

    select * from {{ ref('int_population__age_by_area') }}

),

grouped as (

    select
        area_type,
        area_code,
        area_name,
        county_code,
        year,
        sex,
        case when age >= 100 then 100 else age - age % 5 end as age_group_from,
        -- ordered aggregate: a fixed summation order keeps rebuilt marts byte-identical
        sum(population order by age) as population,
        any_value(members_with_data) as members_with_data,
        any_value(members_expected) as members_expected,
        bool_and(is_complete) as is_complete,
        any_value(completeness_note) as completeness_note,
        {{ lineage_agg('lineage') }} as lineage
    from cells
    group by area_type, area_code, area_name, county_code, year, sex, age_group_from

),

area_totals as (

    select
        area_type,
        area_code,
        year,
        sum(population order by age_group_from) as area_population
    from grouped
    where sex = 'total'
    group by area_type, area_code, year

),

final as (

    select
        grouped.area_type,
        grouped.area_code,
        grouped.area_name,
        grouped.county_code,
        grouped.year,
        grouped.sex,
        case
            when grouped.age_group_from = 100 then '100+'
            else grouped.age_group_from || '-' || (grouped.age_group_from + 4)
        end as age_group,
        grouped.age_group_from,
        case when grouped.age_group_from < 100 then grouped.age_group_from + 4 end as age_group_to,
        cast(grouped.population as bigint) as population,
        100.0 * grouped.population / nullif(area_totals.area_population, 0) as share_of_population_pct,
        grouped.members_with_data,
        grouped.members_expected,
        grouped.is_complete,
        grouped.completeness_note,
        {{ provenance_columns('grouped.lineage') }}
    from grouped
    left join area_totals
        on
            grouped.area_type = area_totals.area_type
            and grouped.area_code = area_totals.area_code
            and grouped.year = area_totals.year

)

select * from final
