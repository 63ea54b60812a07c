-- Location quotients per region x SNI group x year x basis, against the region's county and against the
-- reference economy (var reference_region). Totals are sums of the 16 groups.
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
            as share_in_region
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
        shares.source_series,
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
