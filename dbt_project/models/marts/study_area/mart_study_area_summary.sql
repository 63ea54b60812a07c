-- Headline figures per year for the study area (central LA-Linköping), each LA region, the county and Sweden:
-- population and its share of the county, 5- and 10-year growth, land area and density, jobs (day population),
-- employed residents (night population), job ratio and commuting self-containment of the area as a whole.
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

land_area as (

    select
        region_code,
        region_level,
        land_area_km2
    from {{ ref('stg_scb__land_area') }}
    qualify row_number() over (partition by region_code order by year desc) = 1

),

employment as (

    select
        region_code,
        region_level,
        year,
        -- ordered aggregates: a fixed summation order keeps rebuilt marts byte-identical
        sum(case when basis = 'day' then employed end order by sni_group_code) as jobs,
        sum(case when basis = 'night' then employed end order by sni_group_code) as employed_residents
    from {{ ref('int_employment__sector_base') }}
    group by region_code, region_level, year

),

flows as (

    select * from {{ ref('int_commuting__flows') }}

),

county_population as (

    select
        year,
        population as county_population
    from population
    where area_type = 'county' and area_code = '{{ var("county_code") }}'

),

area_land as (

    select
        membership.area_type,
        membership.area_code,
        coalesce(
            any_value(direct.land_area_km2), sum(land_area.land_area_km2 order by membership.municipality_code)
        ) as land_area_km2
    from membership
    left join land_area
        on membership.municipality_code = land_area.region_code
    left join land_area as direct
        on
            membership.area_code = direct.region_code
            and membership.area_type = direct.region_level
    group by membership.area_type, membership.area_code

),

area_employment as (

    select
        membership.area_type,
        membership.area_code,
        employment.year,
        sum(employment.jobs order by membership.municipality_code) as jobs,
        sum(employment.employed_residents order by membership.municipality_code) as employed_residents
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
        employed_residents
    from employment
    where region_level in ('county', 'country')

),

area_commuting as (

    select
        residence_member.area_type,
        residence_member.area_code,
        flows.year,
        sum(flows.commuters order by flows.residence_code, flows.workplace_code) as od_employed_residents,
        sum(
            case when workplace_member.municipality_code is not null then flows.commuters else 0 end
            order by flows.residence_code, flows.workplace_code
        ) as od_living_and_working_in_area
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
        cast(coalesce(direct_employment.jobs, area_employment.jobs) as bigint) as jobs,
        cast(coalesce(direct_employment.employed_residents, area_employment.employed_residents) as bigint)
            as employed_residents,
        {{ safe_divide('coalesce(direct_employment.jobs, area_employment.jobs)',
                       'coalesce(direct_employment.employed_residents, area_employment.employed_residents)') }}
            as job_ratio,
        {{ safe_divide('area_commuting.od_living_and_working_in_area', 'area_commuting.od_employed_residents') }}
            as self_containment_supply,
        population.source_series,
        population.is_synthetic
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
    left join direct_employment
        on
            population.area_type = direct_employment.area_type
            and population.area_code = direct_employment.area_code
            and population.year = direct_employment.year
    left join area_commuting
        on
            population.area_type = area_commuting.area_type
            and population.area_code = area_commuting.area_code
            and population.year = area_commuting.year

)

select * from final
