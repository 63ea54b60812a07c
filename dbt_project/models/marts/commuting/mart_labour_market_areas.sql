-- SCB's LA rule (docs/design.md §5) applied to the OD matrix per year: a municipality can be a centre if its
-- out-commuting is at most var('la_max_out_share') of employed residents and no single destination takes more
-- than var('la_max_single_destination_share'); every other municipality follows its largest outflow, at most
-- var('la_max_links') links to a centre. A destination outside the OD extract cannot be tested and is treated
-- as an (external) centre. The result is compared with the la_membership seed.
with recursive

balance as (

    select * from {{ ref('int_commuting__municipal_balance') }}

),

municipalities as (

    select * from {{ ref('municipalities') }}

),

la_membership as (

    select * from {{ ref('int_seed__la_membership') }}
    where vintage = {{ var('la_vintage') }}

),

nodes as (

    select
        municipality_code,
        year,
        employed_residents,
        out_commuting_share,
        largest_outflow_code,
        largest_outflow_share,
        lineage,
        coalesce(
            out_commuting_share <= {{ var('la_max_out_share') }}
            and largest_outflow_share <= {{ var('la_max_single_destination_share') }},
            false
        ) as is_centre
    from balance

),

chain as (

    select
        year,
        municipality_code as origin_code,
        municipality_code as node_code,
        0 as links,
        is_centre as reached_centre,
        false as centre_outside_extract,
        municipality_code as path
    from nodes

    union all

    select
        chain.year,
        chain.origin_code,
        current_node.largest_outflow_code as node_code,
        chain.links + 1 as links,
        coalesce(next_node.is_centre, true) as reached_centre,
        next_node.municipality_code is null as centre_outside_extract,
        chain.path || ' > ' || current_node.largest_outflow_code as path
    from chain
    inner join nodes as current_node
        on
            chain.year = current_node.year
            and chain.node_code = current_node.municipality_code
    left join nodes as next_node
        on
            chain.year = next_node.year
            and current_node.largest_outflow_code = next_node.municipality_code
    where
        not chain.reached_centre
        and chain.links < {{ var('la_max_links') }}
        and current_node.largest_outflow_code is not null

),

resolved as (

    select *
    from chain
    qualify row_number() over (
            partition by year, origin_code order by reached_centre desc, links desc
        ) = 1

),

year_lineage as (

    select
        year,
        {{ lineage_agg('lineage') }} as lineage
    from nodes
    group by year

),

final as (

    select
        nodes.municipality_code,
        municipalities.municipality_name,
        nodes.year,
        cast(nodes.employed_residents as bigint) as employed_residents,
        nodes.out_commuting_share,
        nodes.largest_outflow_code,
        nodes.largest_outflow_share,
        nodes.is_centre,
        case when resolved.reached_centre then resolved.node_code end as centre_code,
        case when resolved.reached_centre then centre.municipality_name end as centre_name,
        resolved.links as links_to_centre,
        resolved.path as link_path,
        coalesce(resolved.centre_outside_extract, false) as centre_outside_extract,
        case
            when resolved.reached_centre then 'LA ' || centre.municipality_name
        end as la_region_computed,
        la_membership.la_region as la_region_seed,
        la_membership.vintage as la_vintage_seed,
        coalesce(la_membership.la_region = ('LA ' || centre.municipality_name) and resolved.reached_centre, false)
            as matches_seed,
        case
            when not resolved.reached_centre
                then 'No centre within {{ var("la_max_links") }} links (' || resolved.path || ')'
            when la_membership.la_region is null then 'Not in la_membership seed'
            when la_membership.la_region != 'LA ' || centre.municipality_name
                then 'Seed says ' || la_membership.la_region || ', rule gives LA ' || centre.municipality_name
        end as difference_note,
        -- the centre is found by following other municipalities' flows: all of the year's OD feeds the row
        {{ provenance_columns(lineage_merge(['nodes.lineage', 'year_lineage.lineage'])) }}
    from nodes
    inner join resolved
        on
            nodes.year = resolved.year
            and nodes.municipality_code = resolved.origin_code
    left join municipalities
        on nodes.municipality_code = municipalities.municipality_code
    left join municipalities as centre
        on resolved.node_code = centre.municipality_code
    left join la_membership
        on nodes.municipality_code = la_membership.municipality_code
    left join year_lineage
        on nodes.year = year_lineage.year

)

select * from final
