{#-
  The commuting balance of an origin-destination matrix T_ij (live in i, work in j; docs/design.md §5), one formula
  for int_commuting__municipal_balance (municipal OD extract) and mart_county_commuting (county matrix).
  `flows` has residence_code, workplace_code, year, commuters, lineage. The CTEs: by_residence, by_workplace,
  largest_outflow and commuting_balance, one row per residence area (named `area_code`) and year:
    employed_residents E_i = sum_j T_ij, jobs W_i = sum_j T_ji (0 where nobody works in i), stayers S_i = T_ii,
    in_commuters W_i - S_i, out_commuters E_i - S_i, net_commuting W_i - E_i, job_ratio W_i / E_i,
    self_containment_supply S_i / E_i, self_containment_demand S_i / W_i, out_commuting_share (E_i - S_i) / E_i,
    the largest flow to another area (ties: lowest code) and its share of E_i, then `residence_aggregates`
    (name: aggregate over the residence's flows) and lineage (both sides' inputs).
  The caller writes `with flows as (...), {{ commuting_balance_ctes('flows', 'county_code') }}, final as (...)`.
-#}
{% macro commuting_balance_ctes(flows, area_code, residence_aggregates={}) %}
by_residence as (

    select
        residence_code as {{ area_code }},
        year,
        -- ordered aggregates: a fixed summation order keeps rebuilt marts byte-identical
        sum(commuters order by workplace_code) as employed_residents,
        sum(case when residence_code = workplace_code then commuters else 0 end order by workplace_code) as stayers,
        {%- for name, aggregate in residence_aggregates.items() %}
        {{ aggregate }} as {{ name }},
        {%- endfor %}
        {{ lineage_agg('lineage') }} as lineage
    from {{ flows }}
    group by residence_code, year

),

by_workplace as (

    select
        workplace_code as {{ area_code }},
        year,
        sum(commuters order by residence_code) as jobs,
        {{ lineage_agg('lineage') }} as lineage
    from {{ flows }}
    group by workplace_code, year

),

largest_outflow as (

    select
        residence_code as {{ area_code }},
        year,
        workplace_code as largest_outflow_code,
        commuters as largest_outflow
    from {{ flows }}
    where residence_code != workplace_code
    qualify row_number() over (
            partition by residence_code, year order by commuters desc, workplace_code asc
        ) = 1

),

commuting_balance as (

    select
        by_residence.{{ area_code }},
        by_residence.year,
        by_residence.employed_residents,
        coalesce(by_workplace.jobs, 0) as jobs,
        by_residence.stayers,
        coalesce(by_workplace.jobs, 0) - by_residence.stayers as in_commuters,
        by_residence.employed_residents - by_residence.stayers as out_commuters,
        coalesce(by_workplace.jobs, 0) - by_residence.employed_residents as net_commuting,
        {{ safe_divide('coalesce(by_workplace.jobs, 0)', 'by_residence.employed_residents') }} as job_ratio,
        {{ safe_divide('by_residence.stayers', 'by_residence.employed_residents') }} as self_containment_supply,
        {{ safe_divide('by_residence.stayers', 'coalesce(by_workplace.jobs, 0)') }} as self_containment_demand,
        {{ safe_divide('by_residence.employed_residents - by_residence.stayers', 'by_residence.employed_residents') }}
            as out_commuting_share,
        largest_outflow.largest_outflow_code,
        largest_outflow.largest_outflow,
        {{ safe_divide('largest_outflow.largest_outflow', 'by_residence.employed_residents') }}
            as largest_outflow_share,
        {%- for name in residence_aggregates %}
        by_residence.{{ name }},
        {%- endfor %}
        {{ lineage_merge(['by_residence.lineage', 'by_workplace.lineage']) }} as lineage
    from by_residence
    left join by_workplace
        on
            by_residence.{{ area_code }} = by_workplace.{{ area_code }}
            and by_residence.year = by_workplace.year
    left join largest_outflow
        on
            by_residence.{{ area_code }} = largest_outflow.{{ area_code }}
            and by_residence.year = largest_outflow.year

)
{% endmacro %}
