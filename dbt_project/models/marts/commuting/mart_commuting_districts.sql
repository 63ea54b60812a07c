-- In- and out-commuting of a municipality and its districts per year from PE12-shaped municipal files
-- (Linköping 1994-), one row per area (the whole municipality or a district) and year. Cells the file shows
-- as "-" stay null (not 0).
with

pe12 as (

    select * from {{ ref('int_commuting__pe12') }}

),

municipalities as (

    select * from {{ ref('municipalities') }}

),

district_names as (

    select * from {{ ref('pe12_districts') }}

),

final as (

    select
        pe12.municipality_code,
        municipalities.municipality_name,
        pe12.area_level,
        pe12.area_code,
        district_names.district_name as area_name,
        pe12.year,
        cast(pe12.in_from_other_municipalities as bigint) as in_from_other_municipalities,
        cast(pe12.in_from_same_municipality as bigint) as in_from_same_municipality,
        cast(pe12.in_total as bigint) as in_total,
        cast(pe12.out_to_other_municipalities as bigint) as out_to_other_municipalities,
        cast(pe12.out_to_same_municipality as bigint) as out_to_same_municipality,
        cast(pe12.out_total as bigint) as out_total,
        cast(pe12.net_other_municipalities as bigint) as net_other_municipalities,
        cast(pe12.net_total as bigint) as net_total,
        cast(pe12.live_and_work_in_area as bigint) as live_and_work_in_area,
        cast(pe12.jobs_held_by_municipal_residents as bigint) as jobs_held_by_municipal_residents,
        cast(pe12.residents_working_in_municipality as bigint) as residents_working_in_municipality,
        case
            when pe12.year <= 2009 then 'pe12_16plus'
            when pe12.year <= 2021 then 'pe12_16_74'
            else 'pe12_15_74'
        end as source_series,
        pe12.source_table,
        {{ provenance_columns('pe12.lineage') }}
    from pe12
    left join municipalities
        on pe12.municipality_code = municipalities.municipality_code
    left join district_names
        on
            pe12.municipality_code = district_names.municipality_code
            and pe12.area_code = district_names.district_code

)

select * from final
