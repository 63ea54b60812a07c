-- Location quotients per region x SNI group x year x basis, against the region's county and against the
-- reference economy (var reference_region). Totals are sums of the groups the source publishes (16 with the
-- unknown industry US; RAMS has 15). bases_match says whether region and reference count the same ages and
-- the same groups (FO05 16-74 vs RAMS 16+ in 2018 do not).
with

base as (

    select * from {{ ref('int_employment__sector_base') }}

),

shares as (

    select
        *,
        -- ordered window aggregates: a fixed summation order keeps rebuilt marts byte-identical
        sum(employed order by sni_group_code) over (partition by region_code, year, basis) as region_total,
        {{ safe_divide('employed',
                       'sum(employed order by sni_group_code) over (partition by region_code, year, basis)') }}
            as share_in_region,
        bool_or(sni_group_code = 'US') over (partition by region_code, year, basis) as has_unknown_group
    from base

),

county_reference as (

    select * from shares
    where region_level = 'county'

),

national_reference as (

    select * from shares
    where region_code = '{{ var("reference_region") }}'

),

final as (

    select
        shares.region_code,
        shares.region_level,
        shares.county_code,
        shares.year,
        shares.basis,
        shares.sni_group_code,
        cast(shares.employed as bigint) as employed,
        cast(shares.region_total as bigint) as region_total,
        shares.share_in_region,
        cast(county_reference.employed as bigint) as county_employed,
        cast(county_reference.region_total as bigint) as county_total,
        county_reference.share_in_region as county_share,
        {{ round_index(location_quotient('shares.employed', 'shares.region_total',
                                         'county_reference.employed', 'county_reference.region_total')) }}
            as lq_vs_county,
        cast(national_reference.employed as bigint) as reference_employed,
        cast(national_reference.region_total as bigint) as reference_total,
        national_reference.share_in_region as reference_share,
        {{ round_index(location_quotient('shares.employed', 'shares.region_total',
                                         'national_reference.employed', 'national_reference.region_total')) }}
            as lq_vs_reference,
        '{{ var("reference_region") }}' as reference_region,
        shares.age_range,
        national_reference.age_range as reference_age_range,
        national_reference.age_range = shares.age_range
        and national_reference.has_unknown_group = shares.has_unknown_group as bases_match,
        shares.source_series,
        shares.source_table,
        {{ provenance_columns(lineage_merge(['shares.lineage', 'county_reference.lineage',
                                            'national_reference.lineage'])) }}
    from shares
    left join county_reference
        on
            shares.county_code = county_reference.region_code
            and shares.year = county_reference.year
            and shares.basis = county_reference.basis
            and shares.sni_group_code = county_reference.sni_group_code
    left join national_reference
        on
            shares.year = national_reference.year
            and shares.basis = national_reference.basis
            and shares.sni_group_code = national_reference.sni_group_code

)

select * from final
