-- Employment per region x SNI group x year x basis x sex from every source, real first: SCB TAB3204 (synthetic
-- in the offline snapshot), municipal FO05-shaped files (a municipality and its districts, day basis) and
-- regional employment files (SCB RAMS by county, 16+; Sweden = the sum of all 21 counties). For each region, year
-- and basis exactly one source is kept: a source with no synthetic batch wins over one with; among equals the
-- more detailed source (municipal file, then RAMS, then TAB3204). The kept source is named per row.
with

tab3204 as (

    select * from {{ ref('stg_scb__employment_by_sector') }}

),

day_population as (

    select * from {{ ref('stg_municipal__day_population') }}

),

regional_employment as (

    select * from {{ ref('stg_municipal__regional_employment') }}

),

municipal_sni_groups as (

    select * from {{ ref('municipal_sni_groups') }}

),

file_series as (

    select * from {{ ref('municipal_employment_series') }}

),

scb_series as (

    select * from {{ ref('series_breaks') }}
    where raw_table = 'employment_by_sector'

),

counties as (

    select * from {{ ref('counties') }}

),

tab3204_by_sex as (

    select
        tab3204.region_code,
        tab3204.region_level,
        cast(null as varchar) as municipality_code,
        tab3204.sni_group_code,
        tab3204.basis,
        tab3204.sex_code,
        tab3204.year,
        tab3204.employed,
        tab3204.status,
        tab3204.source_series,
        scb_series.age_range,
        tab3204.source_table,
        tab3204.lineage
    from tab3204
    left join scb_series
        on tab3204.source_series = scb_series.source_series

),

tab3204_rows as (

    select * from tab3204_by_sex
    union all
    select
        region_code,
        region_level,
        municipality_code,
        sni_group_code,
        basis,
        'total' as sex_code,
        year,
        -- ordered aggregate: a fixed summation order keeps rebuilt marts byte-identical
        sum(employed order by sex_code) as employed,
        cast(null as varchar) as status,
        max(source_series) as source_series,
        max(age_range) as age_range,
        max(source_table) as source_table,
        {{ lineage_agg('lineage') }} as lineage
    from tab3204_by_sex
    group by region_code, region_level, municipality_code, sni_group_code, basis, year

),

-- FO05: the municipality is the file's own four-digit code ('Hela kommunen'), so districts of different
-- municipalities' files never collide; '-' (nothing) is 0, '..' (not published) stays null.
fo05_rows as (

    select
        case
            when length(day_population.district) = 4 then day_population.district
            else
                max(case when length(day_population.district) = 4 then day_population.district end)
                    over (partition by day_population.source_table)
                || '-' || day_population.district
        end as region_code,
        case when length(day_population.district) = 4 then 'municipality' else 'district' end as region_level,
        max(case when length(day_population.district) = 4 then day_population.district end)
            over (partition by day_population.source_table) as municipality_code,
        municipal_sni_groups.sni_group_code,
        'day' as basis,
        case day_population.sex_label
            when 'Män' then '1'
            when 'Kvinnor' then '2'
            when 'Tot' then 'total'
            else 'unknown:' || day_population.sex_label
        end as sex_code,
        day_population.year,
        case when day_population.status = '-' then 0 else day_population.employed end as employed,
        day_population.status,
        file_series.source_series,
        file_series.age_range,
        day_population.source_table,
        day_population.lineage
    from day_population
    left join municipal_sni_groups
        on day_population.sni_group_label = municipal_sni_groups.source_code
    left join file_series
        on
            file_series.raw_table = 'municipal_day_population'
            and day_population.year between coalesce(file_series.year_from, 0) and coalesce(file_series.year_to, 9999)

),

rams_regions as (

    select
        regional_employment.region_code,
        regional_employment.region_level,
        cast(null as varchar) as municipality_code,
        regional_employment.sni_group_code,
        regional_employment.basis,
        'total' as sex_code,
        regional_employment.year,
        regional_employment.employed,
        regional_employment.status,
        file_series.source_series,
        file_series.age_range,
        regional_employment.source_table,
        regional_employment.lineage
    from regional_employment
    left join file_series
        on
            file_series.raw_table = 'regional_employment'
            and regional_employment.year between coalesce(file_series.year_from, 0)
            and coalesce(file_series.year_to, 9999)

),

-- one file per county, year and basis (a county in two files of the same shape: the last file name)
rams_counties as (

    select *
    from rams_regions
    where region_level = 'county'
    qualify dense_rank() over (partition by region_code, year, basis order by source_table desc) = 1

),

-- Sweden as the sum of the counties, only where every one of the 21 counties is there with a figure
rams_sweden as (

    select
        '{{ var("reference_region") }}' as region_code,
        'country' as region_level,
        cast(null as varchar) as municipality_code,
        sni_group_code,
        basis,
        'total' as sex_code,
        year,
        sum(employed order by region_code) as employed,
        cast(null as varchar) as status,
        max(source_series) as source_series,
        max(age_range) as age_range,
        max(source_table) as source_table,
        {{ lineage_agg('lineage') }} as lineage
    from rams_counties
    group by sni_group_code, basis, year
    having count(employed) = (select count(*) from counties)

),

candidates as (

    select
        *,
        3 as source_priority
    from tab3204_rows
    union all
    select
        *,
        1 as source_priority
    from fo05_rows
    union all
    select
        *,
        2 as source_priority
    from rams_regions
    union all
    select
        *,
        2 as source_priority
    from rams_sweden

),

per_source as (

    select
        region_code,
        year,
        basis,
        source_table,
        min(source_priority) as source_priority,
        bool_or(
            coalesce(list_bool_or(list_transform(lineage, lambda entry: struct_extract(entry, 'is_synthetic'))), false)
        )
            as any_synthetic
    from candidates
    group by region_code, year, basis, source_table

),

kept_source as (

    select *
    from per_source
    qualify row_number() over (
            partition by region_code, year, basis order by any_synthetic asc, source_priority asc, source_table desc
        ) = 1

),

final as (

    select
        candidates.region_code,
        candidates.region_level,
        coalesce(candidates.municipality_code, case when candidates.region_level = 'municipality'
                then candidates.region_code
        end) as municipality_code,
        case
            when candidates.region_level = 'district' then left(candidates.municipality_code, 2)
            else {{ county_code('candidates.region_code') }}
        end as county_code,
        case when candidates.region_level = 'district' then split_part(candidates.region_code, '-', 2) end
            as district_code,
        candidates.sni_group_code,
        candidates.sni_group_code = 'A-U+US' as is_all_industries,
        candidates.basis,
        candidates.sex_code,
        candidates.year,
        make_date(candidates.year, 1, 1) as period_start,
        candidates.employed,
        candidates.status,
        candidates.source_series,
        candidates.age_range,
        candidates.source_table,
        '{{ var("reference_region") }}' as reference_region,
        candidates.lineage
    from candidates
    inner join kept_source
        on
            candidates.region_code = kept_source.region_code
            and candidates.year = kept_source.year
            and candidates.basis = kept_source.basis
            and candidates.source_table = kept_source.source_table

)

select * from final
