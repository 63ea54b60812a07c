-- Which municipalities make up each reporting area: the municipality itself, its LA region (seed, vintage
-- from vars), the study area (seed flag), its county and Sweden. Only municipalities with population data
-- (the active region set) are members.
with

municipalities as (

    select * from {{ ref('municipalities') }}

),

counties as (

    select * from {{ ref('counties') }}

),

la_membership as (

    select * from {{ ref('la_membership') }}
    where vintage = {{ var('la_vintage') }}

),

region_set as (

    select distinct region_code as municipality_code
    from {{ ref('int_population__regions') }}
    where region_level = 'municipality'

),

members as (

    select
        municipalities.municipality_code,
        municipalities.municipality_name,
        municipalities.county_code,
        municipalities.study_area,
        la_membership.la_region
    from municipalities
    inner join region_set
        on municipalities.municipality_code = region_set.municipality_code
    left join la_membership
        on municipalities.municipality_code = la_membership.municipality_code

),

unioned as (

    select
        'municipality' as area_type,
        municipality_code as area_code,
        municipality_name as area_name,
        municipality_code
    from members

    union all

    select
        'la_region' as area_type,
        la_region as area_code,
        la_region as area_name,
        municipality_code
    from members
    where la_region is not null

    union all

    select
        'study_area' as area_type,
        'study_area' as area_code,
        '{{ var("study_area_name") }}' as area_name,
        municipality_code
    from members
    where study_area

    union all

    select
        'county' as area_type,
        members.county_code as area_code,
        counties.county_name_sv as area_name,
        members.municipality_code
    from members
    left join counties
        on members.county_code = counties.county_code

    union all

    select
        'country' as area_type,
        '00' as area_code,
        'Sverige' as area_name,
        municipality_code
    from members

)

select * from unioned
