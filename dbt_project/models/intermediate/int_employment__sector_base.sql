-- Employment per region x year x basis x SNI group, both sexes, the groups only (no total: the SCB total
-- A-U+US is not the sum of groups because of disclosure control, so regional totals in the business marts are
-- sums of groups), from the real-first employment (int_employment__real_first). Districts that are not places
-- (unspecified or varying workplace, ...) and region-years with an unpublished group ('..') are left out; where
-- the reference economy has no unknown-industry group (RAMS), neither have the regions.
with

employment as (

    select * from {{ ref('int_employment__real_first') }}

),

pseudo_districts as (

    select * from {{ ref('municipal_pseudo_districts') }}

),

groups as (

    select employment.*
    from employment
    where
        not employment.is_all_industries
        and employment.sex_code = 'total'
        and not exists (
            select 1
            from pseudo_districts
            where
                employment.region_level = 'district'
                and employment.district_code = pseudo_districts.district_code
        )

),

-- the reference economy's source without an unknown-industry group (RAMS): the regions leave theirs out too, so
-- region and reference shares are over the same 15 groups
reference_without_unknown as (

    select
        year,
        basis
    from groups
    where region_code = '{{ var("reference_region") }}'
    group by year, basis
    having not bool_or(sni_group_code = 'US')

),

comparable as (

    select groups.*
    from groups
    where not (
            groups.sni_group_code = 'US'
            and exists (
                select 1
                from reference_without_unknown
                where groups.year = reference_without_unknown.year and groups.basis = reference_without_unknown.basis
            )
        )

),

complete as (

    select *
    from comparable
    qualify count(*) over (partition by region_code, year, basis)
        = count(employed) over (partition by region_code, year, basis)

),

final as (

    select
        region_code,
        region_level,
        county_code,
        municipality_code,
        year,
        basis,
        sni_group_code,
        employed,
        source_series,
        age_range,
        source_table,
        reference_region,
        coalesce(list_bool_or(list_transform(lineage, lambda entry: struct_extract(entry, 'is_synthetic'))), false)
            as is_synthetic,
        lineage
    from complete

)

select * from final
