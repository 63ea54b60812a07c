-- Commuting balance per residence municipality of the OD extract and year (docs/design.md §5;
-- T_ij: live in i, work in j).
-- Jobs W_i and in-commuting count only residents of the municipalities covered by the OD extract.
-- The arithmetic is commuting_balance_ctes (macros/commuting.sql), shared with mart_county_commuting.
with

flows as (

    select * from {{ ref('int_commuting__flows') }}

),

{{ commuting_balance_ctes(
    'flows',
    'municipality_code',
    residence_aggregates={'source_series': 'max(source_series)', 'is_synthetic': 'bool_or(is_synthetic)'}
) }},

final as (

    select
        municipality_code,
        year,
        employed_residents,
        jobs,
        stayers,
        out_commuters,
        in_commuters,
        net_commuting,
        job_ratio,
        self_containment_supply,
        self_containment_demand,
        out_commuting_share,
        largest_outflow_code,
        largest_outflow,
        largest_outflow_share,
        source_series,
        is_synthetic,
        lineage
    from commuting_balance

)

select * from final
