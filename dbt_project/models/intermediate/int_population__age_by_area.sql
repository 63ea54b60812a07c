-- Population by single year of age and sex per reporting area (municipality, study area, county) and year.
-- A group's cell is the sum over ALL its real member municipalities; when a member lacks complete age data
-- for that year (all 101 ages x 2 sexes) every cell of the area and year is null and `completeness_note` says
-- how many members were loaded (never a partial sum presented as the area). Sex 'total' = men + women.
with

ages as (

    select * from {{ ref('stg_scb__population_by_age') }}
    where region_level = 'municipality' and population is not null

),

membership as (

    select * from {{ ref('int_area_membership') }}
    where area_type in ('municipality', 'study_area', 'county')

),

areas as (

    select
        area_type,
        area_code,
        any_value(area_name) as area_name,
        -- the county all members lie in (null for an area spanning counties)
        case when count(distinct left(municipality_code, 2)) = 1 then min(left(municipality_code, 2)) end
            as county_code,
        any_value(members_expected) as members_expected
    from membership
    group by area_type, area_code

),

-- a municipality's age data for a year is complete with every single year 0..99 and 100+ for both sexes
complete_members as (

    select
        region_code,
        year
    from ages
    group by region_code, year
    having count(distinct age_code || ':' || sex_code) = 101 * 2

),

-- members with complete age data per area and year
members_with_data as (

    select
        membership.area_type,
        membership.area_code,
        complete_members.year,
        count(*) as members_with_data
    from membership
    inner join complete_members
        on membership.municipality_code = complete_members.region_code
    group by membership.area_type, membership.area_code, complete_members.year

),

by_sex as (

    select
        membership.area_type,
        membership.area_code,
        ages.year,
        ages.sex,
        ages.age,
        ages.is_open_age_group,
        -- ordered aggregate: a fixed summation order keeps rebuilt marts byte-identical
        sum(ages.population order by membership.municipality_code) as population,
        {{ lineage_agg('ages.lineage') }} as lineage
    from membership
    inner join ages
        on membership.municipality_code = ages.region_code
    group by membership.area_type, membership.area_code, ages.year, ages.sex, ages.age, ages.is_open_age_group

),

both_sexes as (

    select
        area_type,
        area_code,
        year,
        'total' as sex,
        age,
        is_open_age_group,
        sum(population order by sex) as population,
        {{ lineage_agg('lineage') }} as lineage
    from by_sex
    group by area_type, area_code, year, age, is_open_age_group

),

cells as (

    select * from by_sex
    union all
    select * from both_sexes

),

final as (

    select
        cells.area_type,
        cells.area_code,
        areas.area_name,
        areas.county_code,
        cells.year,
        cells.sex,
        cells.age,
        cells.is_open_age_group,
        case when coalesce(members_with_data.members_with_data, 0) = areas.members_expected then cells.population end
            as population,
        coalesce(members_with_data.members_with_data, 0) as members_with_data,
        areas.members_expected,
        coalesce(members_with_data.members_with_data, 0) = areas.members_expected as is_complete,
        case
            when coalesce(members_with_data.members_with_data, 0) < areas.members_expected
                then 'age structure unknown: ' || coalesce(members_with_data.members_with_data, 0) || ' of '
                    || areas.members_expected || ' member municipalities have complete age data'
        end as completeness_note,
        cells.lineage
    from cells
    inner join areas
        on
            cells.area_type = areas.area_type
            and cells.area_code = areas.area_code
    left join members_with_data
        on
            cells.area_type = members_with_data.area_type
            and cells.area_code = members_with_data.area_code
            and cells.year = members_with_data.year

)

select * from final
