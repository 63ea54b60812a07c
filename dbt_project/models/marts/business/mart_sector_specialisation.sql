-- Specialisation per region x year x basis: Krugman, Hoover and Gini of specialisation against the county and
-- against the reference economy, and the Herfindahl concentration of the region's own structure.
with

base as (

    select * from {{ ref('int_employment__sector_base') }}

),

shares as (

    select
        *,
        -- ordered window aggregate: a fixed summation order keeps rebuilt marts byte-identical
        {{ safe_divide('employed',
                       'sum(employed order by sni_group_code) over (partition by region_code, year, basis)') }}
            as share_in_region,
        bool_or(sni_group_code = 'US') over (partition by region_code, year, basis) as has_unknown_group
    from base

),

with_reference as (

    select
        shares.region_code,
        shares.region_level,
        shares.year,
        shares.basis,
        shares.sni_group_code,
        shares.share_in_region,
        shares.source_series,
        shares.age_range,
        national_reference.age_range as reference_age_range,
        national_reference.age_range = shares.age_range
        and national_reference.has_unknown_group = shares.has_unknown_group as bases_match,
        shares.source_table,
        shares.is_synthetic,
        {{ lineage_merge(['shares.lineage', 'county_reference.lineage', 'national_reference.lineage']) }}
            as lineage,
        county_reference.share_in_region as county_share,
        national_reference.share_in_region as reference_share,
        {{ safe_divide('shares.share_in_region', 'county_reference.share_in_region') }} as lq_vs_county,
        {{ safe_divide('shares.share_in_region', 'national_reference.share_in_region') }} as lq_vs_reference
    from shares
    left join shares as county_reference
        on
            shares.county_code = county_reference.region_code
            and county_reference.region_level = 'county'
            and shares.year = county_reference.year
            and shares.basis = county_reference.basis
            and shares.sni_group_code = county_reference.sni_group_code
    left join shares as national_reference
        on
            national_reference.region_code = '{{ var("reference_region") }}'
            and shares.year = national_reference.year
            and shares.basis = national_reference.basis
            and shares.sni_group_code = national_reference.sni_group_code

),

ranked as (

    select
        *,
        -- ties in the LQ are ranked by SNI group and means are ordered aggregates, so rebuilds are byte-identical
        row_number() over (
            partition by region_code, year, basis, lq_vs_county is null order by lq_vs_county, sni_group_code
        ) as lq_vs_county_rank,
        avg(lq_vs_county order by sni_group_code) over (partition by region_code, year, basis) as lq_vs_county_mean,
        row_number() over (
            partition by region_code, year, basis, lq_vs_reference is null order by lq_vs_reference, sni_group_code
        ) as lq_vs_reference_rank,
        avg(lq_vs_reference order by sni_group_code) over (partition by region_code, year, basis)
            as lq_vs_reference_mean
    from with_reference

),

aggregated as (

    select
        region_code,
        region_level,
        year,
        basis,
        count(*) as n_industries,
        count(county_share) = count(*) as has_county_reference,
        count(reference_share) = count(*) as has_national_reference,
        {{ krugman('share_in_region', 'county_share', 'sni_group_code') }} as krugman_vs_county,
        {{ krugman('share_in_region', 'reference_share', 'sni_group_code') }} as krugman_vs_reference,
        {{ hoover('share_in_region', 'county_share', 'sni_group_code') }} as hoover_vs_county,
        {{ hoover('share_in_region', 'reference_share', 'sni_group_code') }} as hoover_vs_reference,
        {{ gini_specialisation('lq_vs_county', 'lq_vs_county_rank', 'lq_vs_county_mean', 'sni_group_code') }}
            as gini_vs_county,
        {{ gini_specialisation('lq_vs_reference', 'lq_vs_reference_rank', 'lq_vs_reference_mean', 'sni_group_code') }}
            as gini_vs_reference,
        {{ herfindahl('share_in_region', 'sni_group_code') }} as herfindahl,
        max(source_series) as source_series,
        max(age_range) as age_range,
        max(reference_age_range) as reference_age_range,
        bool_and(bases_match) as bases_match,
        max(source_table) as source_table,
        bool_or(is_synthetic) as is_synthetic,
        {{ lineage_agg('lineage') }} as lineage
    from ranked
    group by region_code, region_level, year, basis

),

final as (

    select
        region_code,
        region_level,
        year,
        basis,
        n_industries,
        {{ round_index('case when has_county_reference then krugman_vs_county end') }} as krugman_vs_county,
        {{ round_index('case when has_national_reference then krugman_vs_reference end') }} as krugman_vs_reference,
        {{ round_index('case when has_county_reference then hoover_vs_county end') }} as hoover_vs_county,
        {{ round_index('case when has_national_reference then hoover_vs_reference end') }} as hoover_vs_reference,
        {{ round_index('case when has_county_reference then gini_vs_county end') }} as gini_vs_county,
        {{ round_index('case when has_national_reference then gini_vs_reference end') }} as gini_vs_reference,
        {{ round_index('herfindahl') }} as herfindahl,
        {{ round_index(herfindahl_normalised('herfindahl', 'n_industries')) }} as herfindahl_normalised,
        {{ round_index(herfindahl_equivalent_number('herfindahl')) }} as herfindahl_equivalent_number,
        '{{ var("reference_region") }}' as reference_region,
        age_range,
        reference_age_range,
        case when has_national_reference then bases_match end as bases_match,
        source_series,
        source_table,
        {{ provenance_columns('lineage') }}
    from aggregated

)

select * from final
