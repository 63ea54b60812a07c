-- Population per reporting area and year. Municipalities, LA regions and the study area are sums of
-- member municipalities; counties use SCB's county figure where loaded (else the sum of members); Sweden
-- uses SCB's figure only (the region set does not cover the country). `members_with_data` of
-- `members_expected` (the area's real member count) and `is_complete` say how complete a sum is; members that did
-- not exist yet that year (seed municipality_formation) are counted in `members_not_yet_formed` and named in
-- `series_note`, and do not make the area incomplete (their territory is in another member's figure).
with

regions as (

    select * from {{ ref('int_population__regions') }}

),

membership as (

    select * from {{ ref('int_area_membership') }}

),

member_counts as (

    select
        area_type,
        area_code,
        any_value(area_name) as area_name,
        any_value(members_expected) as members_expected
    from membership
    group by area_type, area_code

),

formation as (

    select * from {{ ref('municipality_formation') }}

),

years as (

    select distinct year from regions

),

-- members that did not exist yet in a year (SCB's 0 became null in staging): their territory is still in the
-- figure of the municipality they were formed from, so the area is complete without them
not_yet_formed as (

    select
        membership.area_type,
        membership.area_code,
        years.year,
        count(*) as members_not_yet_formed,
        string_agg(
            formation.municipality_name || ' (' || formation.municipality_code || ') not formed until '
            || strftime(formation.formed_on, '%Y-%m-%d') || '; its territory is in '
            || formation.formed_from_name || ' (' || formation.formed_from_code || ')',
            '; ' order by formation.municipality_code
        ) as series_note
    from membership
    inner join formation
        on membership.municipality_code = formation.municipality_code
    inner join years
        on years.year < formation.first_population_year
    group by membership.area_type, membership.area_code, years.year

),

member_sums as (

    select
        membership.area_type,
        membership.area_code,
        regions.year,
        -- ordered aggregate: a fixed summation order keeps rebuilt marts byte-identical
        sum(regions.population order by membership.municipality_code) as population,
        count(*) as members_with_data,
        max(regions.source_series) as source_series,
        bool_or(regions.is_synthetic) as is_synthetic,
        {{ lineage_agg('regions.lineage') }} as lineage
    from membership
    inner join regions
        on membership.municipality_code = regions.region_code
    group by membership.area_type, membership.area_code, regions.year

),

direct as (

    select
        region_level as area_type,
        region_code as area_code,
        year,
        population,
        source_series,
        is_synthetic,
        lineage
    from regions
    where region_level in ('county', 'country')

),

combined as (

    select
        coalesce(direct.area_type, member_sums.area_type) as area_type,
        coalesce(direct.area_code, member_sums.area_code) as area_code,
        coalesce(direct.year, member_sums.year) as year,
        case
            when coalesce(direct.area_type, member_sums.area_type) in ('municipality', 'la_region', 'study_area')
                then member_sums.population
            when direct.population is not null then direct.population
            when member_sums.area_type = 'county' then member_sums.population
        end as population,
        member_sums.population as population_sum_of_members,
        member_sums.members_with_data,
        direct.population is not null as is_published_total,
        coalesce(direct.source_series, member_sums.source_series) as source_series,
        coalesce(direct.is_synthetic, member_sums.is_synthetic) as is_synthetic,
        -- the row shows the published total and the sum of members: both feed it
        {{ lineage_merge(['direct.lineage', 'member_sums.lineage']) }} as lineage
    from member_sums
    full outer join direct
        on
            member_sums.area_type = direct.area_type
            and member_sums.area_code = direct.area_code
            and member_sums.year = direct.year

),

final as (

    select
        combined.area_type,
        combined.area_code,
        coalesce(member_counts.area_name, combined.area_code) as area_name,
        combined.year,
        combined.population,
        combined.population_sum_of_members,
        coalesce(combined.members_with_data, 0) as members_with_data,
        member_counts.members_expected,
        coalesce(not_yet_formed.members_not_yet_formed, 0) as members_not_yet_formed,
        not_yet_formed.series_note,
        combined.is_published_total,
        -- complete: SCB's own total, or every real member municipality that existed that year has data
        coalesce(
            combined.is_published_total
            or combined.members_with_data + coalesce(not_yet_formed.members_not_yet_formed, 0)
            = member_counts.members_expected,
            false
        ) as is_complete,
        combined.source_series,
        combined.is_synthetic,
        combined.lineage
    from combined
    left join member_counts
        on
            combined.area_type = member_counts.area_type
            and combined.area_code = member_counts.area_code
    left join not_yet_formed
        on
            combined.area_type = not_yet_formed.area_type
            and combined.area_code = not_yet_formed.area_code
            and combined.year = not_yet_formed.year
    where combined.population is not null

)

select * from final
