-- Employed persons per region x SNI group x year x basis x sex, real first (int_employment__real_first): one
-- source per region, year and basis, named in source_table; the row's provenance follows its lineage.
with

employment as (

    select * from {{ ref('int_employment__real_first') }}

),

sni_groups as (

    select * from {{ ref('sni2007_groups') }}

),

final as (

    select
        employment.region_code,
        employment.region_level,
        employment.county_code,
        employment.municipality_code,
        employment.district_code,
        employment.sni_group_code,
        sni_groups.name_en as sni_group_name_en,
        sni_groups.name_sv as sni_group_name_sv,
        employment.is_all_industries,
        employment.basis,
        employment.sex_code,
        employment.year,
        employment.period_start,
        cast(employment.employed as bigint) as employed,
        employment.status,
        employment.source_series,
        employment.age_range,
        employment.source_table,
        employment.reference_region,
        {{ provenance_columns('employment.lineage') }}
    from employment
    left join sni_groups
        on employment.sni_group_code = sni_groups.sni_group_code

)

select * from final
