-- Headline figures per year for the study area (central LA-Linköping), each LA region, the county and Sweden:
-- population and its share of the county, 5- and 10-year growth, land area and density, jobs (day population),
-- employed residents (night population), job ratio and commuting self-containment of the area as a whole.
-- A group figure is SCB's published figure for that area or the sum over ALL its real member municipalities;
-- where neither exists it is null and `completeness_note` says why (never another area's value).
with

population as (

    select * from {{ ref('int_population__by_area') }}
    where area_type in ('study_area', 'la_region', 'county', 'country')

),

growth as (

    select * from {{ ref('int_population__growth') }}

),

membership as (

    select * from {{ ref('int_area_membership') }}

),

area_members as (

    select distinct
        area_type,
        area_code,
        members_expected
    from membership

),

land_area as (

    select
        region_code,
        region_level,
        year as land_area_year,
        land_area_km2,
        lineage
    from {{ ref('stg_scb__land_area') }}
    where land_area_km2 is not null
    qualify row_number() over (partition by region_code order by year desc) = 1

),

employment as (

    select
        region_code,
        region_level,
        year,
        -- ordered aggregates: a fixed summation order keeps rebuilt marts byte-identical
        sum(case when basis = 'day' then employed end order by sni_group_code) as jobs,
        sum(case when basis = 'night' then employed end order by sni_group_code) as employed_residents,
        {{ lineage_agg('lineage') }} as lineage
    from {{ ref('int_employment__sector_base') }}
    group by region_code, region_level, year

),

flows as (

    select * from {{ ref('int_commuting__flows') }}

),

county_population as (

    select
        year,
        population as county_population,
        lineage
    from population
    where area_type = 'county' and area_code = '{{ var("county_code") }}'

),

members_land as (

    select
        membership.area_type,
        membership.area_code,
        count(land_area.land_area_km2) as members_with_land_area,
        -- rounded to the 2 decimals SCB publishes, so a float sum shows no binary noise
        round(sum(land_area.land_area_km2 order by membership.municipality_code), 2) as land_area_km2,
        {{ lineage_agg('land_area.lineage') }} as lineage
    from membership
    left join land_area
        on membership.municipality_code = land_area.region_code
    group by membership.area_type, membership.area_code

),

area_land as (

    select
        area_members.area_type,
        area_members.area_code,
        area_members.members_expected,
        coalesce(members_land.members_with_land_area, 0) as members_with_land_area,
        -- the sum over every real member; else SCB's published figure for the area itself; else unknown
        case
            when members_land.members_with_land_area = area_members.members_expected
                then members_land.land_area_km2
            else direct.land_area_km2
        end as land_area_km2,
        case
            when members_land.members_with_land_area = area_members.members_expected then members_land.lineage
            else direct.lineage
        end as lineage,
        case
            when members_land.members_with_land_area = area_members.members_expected then null
            when direct.land_area_km2 is not null
                then 'land area: SCB figure for the area ('
                    || cast(direct.land_area_year as varchar) || '); '
                    || cast(coalesce(members_land.members_with_land_area, 0) as varchar) || ' of '
                    || cast(area_members.members_expected as varchar) || ' member municipalities loaded'
            else 'land area unknown: ' || cast(coalesce(members_land.members_with_land_area, 0) as varchar)
                || ' of ' || cast(area_members.members_expected as varchar)
                || ' member municipalities loaded and no SCB figure for the area'
        end as land_area_note
    from area_members
    left join members_land
        on
            area_members.area_type = members_land.area_type
            and area_members.area_code = members_land.area_code
    left join land_area as direct
        on
            area_members.area_code = direct.region_code
            and area_members.area_type = direct.region_level

),

members_employment as (

    select
        membership.area_type,
        membership.area_code,
        employment.year,
        count(*) as members_with_employment,
        any_value(membership.members_expected) as members_expected,
        sum(employment.jobs order by membership.municipality_code) as jobs,
        sum(employment.employed_residents order by membership.municipality_code) as employed_residents,
        {{ lineage_agg('employment.lineage') }} as lineage
    from membership
    inner join employment
        on membership.municipality_code = employment.region_code
    group by membership.area_type, membership.area_code, employment.year

),

direct_employment as (

    select
        region_level as area_type,
        region_code as area_code,
        year,
        jobs,
        employed_residents,
        lineage
    from employment
    where region_level in ('county', 'country')

),

area_employment as (

    select
        coalesce(direct.area_type, members_employment.area_type) as area_type,
        coalesce(direct.area_code, members_employment.area_code) as area_code,
        coalesce(direct.year, members_employment.year) as year,
        -- SCB's figure for the area; else the sum over every real member; else unknown
        case
            when direct.area_code is not null then direct.jobs
            when members_employment.members_with_employment = members_employment.members_expected
                then members_employment.jobs
        end as jobs,
        case
            when direct.area_code is not null then direct.employed_residents
            when members_employment.members_with_employment = members_employment.members_expected
                then members_employment.employed_residents
        end as employed_residents,
        case
            when direct.area_code is not null then direct.lineage
            when members_employment.members_with_employment = members_employment.members_expected
                then members_employment.lineage
        end as lineage,
        case
            when
                direct.area_code is null
                and members_employment.members_with_employment != members_employment.members_expected
                then 'jobs unknown: ' || cast(members_employment.members_with_employment as varchar) || ' of '
                    || cast(members_employment.members_expected as varchar) || ' member municipalities loaded'
        end as employment_note
    from members_employment
    full outer join direct_employment as direct
        on
            members_employment.area_type = direct.area_type
            and members_employment.area_code = direct.area_code
            and members_employment.year = direct.year

),

area_commuting as (

    select
        residence_member.area_type,
        residence_member.area_code,
        flows.year,
        count(distinct flows.residence_code) as members_with_od,
        any_value(residence_member.members_expected) as members_expected,
        sum(flows.commuters order by flows.residence_code, flows.workplace_code) as od_employed_residents,
        sum(
            case when workplace_member.municipality_code is not null then flows.commuters else 0 end
            order by flows.residence_code, flows.workplace_code
        ) as od_living_and_working_in_area,
        {{ lineage_agg('flows.lineage') }} as lineage
    from flows
    inner join membership as residence_member
        on
            flows.residence_code = residence_member.municipality_code
            -- Sweden is not covered by a regional OD extract, so no self-containment for it
            and residence_member.area_type != 'country'
    left join membership as workplace_member
        on
            flows.workplace_code = workplace_member.municipality_code
            and residence_member.area_type = workplace_member.area_type
            and residence_member.area_code = workplace_member.area_code
    group by residence_member.area_type, residence_member.area_code, flows.year

),

complete_commuting as (

    -- self-containment of a group only where the OD extract covers all its real members as residences
    select * from area_commuting
    where members_with_od = members_expected

),

final as (

    select
        population.area_type,
        population.area_code,
        population.area_name,
        population.year,
        cast(population.population as bigint) as population,
        population.members_with_data,
        population.members_expected,
        case
            -- at all-Sweden scale the other counties are areas too: their share of this county means nothing
            when population.area_type = 'county' and population.area_code != '{{ var("county_code") }}' then null
            else {{ safe_divide('population.population', 'county_population.county_population') }}
        end as share_of_county_population,
        growth_5y.growth_pct as growth_pct_5y,
        growth_10y.growth_pct as growth_pct_10y,
        area_land.land_area_km2,
        {{ safe_divide('population.population', 'area_land.land_area_km2') }} as density_per_km2,
        cast(area_employment.jobs as bigint) as jobs,
        cast(area_employment.employed_residents as bigint) as employed_residents,
        {{ safe_divide('area_employment.jobs', 'area_employment.employed_residents') }} as job_ratio,
        {{ safe_divide('complete_commuting.od_living_and_working_in_area',
                       'complete_commuting.od_employed_residents') }} as self_containment_supply,
        population.source_series,
        population.is_complete as is_population_complete,
        area_land.members_with_land_area,
        nullif(concat_ws(
            '; ',
            case
                when not population.is_complete
                    then 'population: sum of ' || cast(population.members_with_data as varchar) || ' of '
                        || cast(population.members_expected as varchar) || ' member municipalities'
            end,
            area_land.land_area_note,
            area_employment.employment_note
        ), '') as completeness_note,
        {{ provenance_columns(lineage_merge([
            'population.lineage',
            "case when population.area_type = 'county' and population.area_code != '" ~ var('county_code')
                ~ "' then null else county_population.lineage end",
            'growth_5y.lineage', 'growth_10y.lineage', 'area_land.lineage', 'area_employment.lineage',
            'complete_commuting.lineage'])) }}
    from population
    left join county_population
        on population.year = county_population.year
    left join growth as growth_5y
        on
            population.area_type = growth_5y.area_type
            and population.area_code = growth_5y.area_code
            and population.year = growth_5y.end_year
            and growth_5y.horizon_label = '5y'
    left join growth as growth_10y
        on
            population.area_type = growth_10y.area_type
            and population.area_code = growth_10y.area_code
            and population.year = growth_10y.end_year
            and growth_10y.horizon_label = '10y'
    left join area_land
        on
            population.area_type = area_land.area_type
            and population.area_code = area_land.area_code
    left join area_employment
        on
            population.area_type = area_employment.area_type
            and population.area_code = area_employment.area_code
            and population.year = area_employment.year
    left join complete_commuting
        on
            population.area_type = complete_commuting.area_type
            and population.area_code = complete_commuting.area_code
            and population.year = complete_commuting.year

)

select * from final
