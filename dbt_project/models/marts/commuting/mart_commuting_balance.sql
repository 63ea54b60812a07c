-- Commuting balance per municipality and year, real first (docs/design.md §5; T_ij: live in i, work in j).
-- Per municipality and year ONE source supplies the row, the first that exists of
--   1. a municipal PE12-shaped file, whole-municipality row (Linköping 1994-): in, out, net, live-and-work
--   2. SCB's commuting totals (TAB3267 1993-2003, TAB3266 2004-2018, TAB5839 2019-): live-and-work and out,
--      in-commuters where loaded (jobs and net are null without them)
--   3. the OD matrix (int_commuting__municipal_balance): jobs count only residents of the OD extract
-- real before synthetic at every step; `balance_basis` and `source_table` say which, and the provenance
-- columns follow the one source. The largest outflow needs the matrix: it is shown only on OD rows.
with

pe12 as (

    select * from {{ ref('int_commuting__pe12') }}
    where area_level = 'municipality'

),

totals as (

    select * from {{ ref('stg_scb__commuting_totals') }}
    where sex_code = '4'

),

od_balance as (

    select * from {{ ref('int_commuting__municipal_balance') }}

),

municipalities as (

    select * from {{ ref('municipalities') }}

),

from_pe12 as (

    select
        municipality_code,
        year,
        -- PE12's Totkn on the jobs side (In) equals SCB's "bor och arbetar i kommunen" every year 1994-2024;
        -- jobs = live-and-work + in-commuters, so net = jobs - employed residents = PE12's Netto
        jobs_held_by_municipal_residents as stayers,
        in_from_other_municipalities as in_commuters,
        out_to_other_municipalities as out_commuters,
        cast(null as varchar) as largest_outflow_code,
        cast(null as double) as largest_outflow,
        'all_residences' as jobs_coverage,
        'municipal_file_pe12' as balance_basis,
        1 as basis_order,
        source_table,
        case
            when year <= 2009 then 'pe12_16plus'
            when year <= 2021 then 'pe12_16_74'
            else 'pe12_15_74'
        end as source_series,
        is_synthetic,
        lineage
    from pe12

),

from_totals as (

    select
        region_code as municipality_code,
        year,
        max(case when measure = 'stayers' then persons end) as stayers,
        max(case when measure = 'in_commuters' then persons end) as in_commuters,
        max(case when measure = 'out_commuters' then persons end) as out_commuters,
        cast(null as varchar) as largest_outflow_code,
        cast(null as double) as largest_outflow,
        case
            when max(case when measure = 'in_commuters' then persons end) is not null then 'all_residences'
            else 'not_available'
        end as jobs_coverage,
        'commuting_totals' as balance_basis,
        2 as basis_order,
        max(source_table) as source_table,
        max(source_series) as source_series,
        bool_or(is_synthetic) as is_synthetic,
        {{ lineage_agg('lineage') }} as lineage
    from totals
    group by region_code, year

),

from_od as (

    select
        municipality_code,
        year,
        stayers,
        in_commuters,
        out_commuters,
        largest_outflow_code,
        largest_outflow,
        'residences_in_od_extract' as jobs_coverage,
        'od_matrix' as balance_basis,
        3 as basis_order,
        array_to_string(list_sort(list_distinct(list_transform(
            lineage, lambda entry: struct_extract(entry, 'source_table')
        ))), ',') as source_table,
        source_series,
        is_synthetic,
        lineage
    from od_balance

),

candidates as (

    select * from from_pe12
    union all
    select * from from_totals
    union all
    select * from from_od

),

chosen as (

    select *
    from candidates
    where stayers is not null and out_commuters is not null
    qualify row_number() over (
            partition by municipality_code, year order by is_synthetic asc, basis_order asc, source_table asc
        ) = 1

),

final as (

    select
        chosen.municipality_code,
        municipalities.municipality_name,
        chosen.year,
        cast(chosen.stayers + chosen.out_commuters as bigint) as employed_residents,
        cast(chosen.stayers + chosen.in_commuters as bigint) as jobs,
        cast(chosen.stayers as bigint) as stayers,
        cast(chosen.in_commuters as bigint) as in_commuters,
        cast(chosen.out_commuters as bigint) as out_commuters,
        cast(chosen.in_commuters - chosen.out_commuters as bigint) as net_commuting,
        {{ safe_divide('chosen.stayers + chosen.in_commuters', 'chosen.stayers + chosen.out_commuters') }}
            as job_ratio,
        {{ safe_divide('chosen.stayers', 'chosen.stayers + chosen.out_commuters') }} as self_containment_supply,
        {{ safe_divide('chosen.stayers', 'chosen.stayers + chosen.in_commuters') }} as self_containment_demand,
        {{ safe_divide('chosen.out_commuters', 'chosen.stayers + chosen.out_commuters') }} as out_commuting_share,
        chosen.largest_outflow_code,
        destination.municipality_name as largest_outflow_name,
        cast(chosen.largest_outflow as bigint) as largest_outflow,
        {{ safe_divide('chosen.largest_outflow', 'chosen.stayers + chosen.out_commuters') }}
            as largest_outflow_share,
        chosen.jobs_coverage,
        chosen.balance_basis,
        chosen.source_table,
        chosen.source_series,
        {{ provenance_columns('chosen.lineage') }}
    from chosen
    left join municipalities
        on chosen.municipality_code = municipalities.municipality_code
    left join municipalities as destination
        on chosen.largest_outflow_code = destination.municipality_code

)

select * from final
