-- Which municipalities make up each reporting area: the municipality itself, its LA region (seed, vintage
-- from vars), the study area (seed flag), its county and Sweden. Only municipalities with population data
-- (the active region set) are members; `members_expected` is the area's real member count (all municipalities
-- of the county or of Sweden, the LA's seed members plus its centre, the seed's study area), so an aggregate
-- can say how complete it is. An LA with at most half of its real members in the region set is left out: its
-- few loaded members would otherwise be presented as the LA (e.g. Ydre alone as "LA Aneby").
with

municipalities as (

    select * from {{ ref('municipalities') }}

),

counties as (

    select * from {{ ref('counties') }}

),

la_membership as (

    select * from {{ ref('int_seed__la_membership') }}
    where vintage = {{ var('la_vintage') }}

),

region_set as (

    select distinct region_code as municipality_code
    from {{ ref('int_population__regions') }}
    where region_level = 'municipality'

),

-- the real members of each LA: the seed's members plus the centre the LA is named after (an LA always
-- contains its centre, which may lie in another county and so be missing from an Östergötland seed)
la_real_members as (

    select
        la_region,
        municipality_code
    from la_membership

    union

    select
        la_membership.la_region,
        centre.municipality_code
    from la_membership
    inner join municipalities as centre
        on la_membership.la_region = 'LA ' || centre.municipality_name

),

expected as (

    select
        'la_region' as area_type,
        la_region as area_code,
        count(distinct municipality_code) as members_expected
    from la_real_members
    group by la_region

    union all

    select
        'study_area' as area_type,
        'study_area' as area_code,
        count(*) as members_expected
    from municipalities
    where study_area

    union all

    select
        'county' as area_type,
        county_code as area_code,
        count(*) as members_expected
    from municipalities
    group by county_code

    union all

    select
        'country' as area_type,
        '00' as area_code,
        count(*) as members_expected
    from municipalities

),

members as (

    select
        municipalities.municipality_code,
        municipalities.municipality_name,
        municipalities.county_code,
        municipalities.study_area,
        la_real_members.la_region
    from municipalities
    inner join region_set
        on municipalities.municipality_code = region_set.municipality_code
    left join la_real_members
        on municipalities.municipality_code = la_real_members.municipality_code

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

),

with_expected as (

    select
        unioned.*,
        coalesce(expected.members_expected, 1) as members_expected,
        count(*) over (partition by unioned.area_type, unioned.area_code) as members_in_region_set
    from unioned
    left join expected
        on
            unioned.area_type = expected.area_type
            and unioned.area_code = expected.area_code

),

final as (

    select
        area_type,
        area_code,
        area_name,
        municipality_code,
        members_expected,
        members_in_region_set
    from with_expected
    -- an LA mostly outside the region set is not an LA here
    where not (area_type = 'la_region' and 2 * members_in_region_set <= members_expected)

)

select * from final
