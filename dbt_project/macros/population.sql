{#- Pooled sums and means over the group's members with data in both years; a member formed during the period
    adds its end population to the pooled end when `parent_in_group` (its parent held its territory at the start). -#}
{% macro pooled_with_formed(parent_in_group) -%}
{%- set start_sum = "sum(population_start order by municipality_code) filter (where has_growth)" -%}
{%- set end_sum -%}
sum(
            case when has_growth then population_end when {{ parent_in_group }} then population_end_if_formed end
            order by municipality_code
        )
{%- endset -%}
-- ordered aggregates: floating-point sums in a fixed order keep rebuilt marts byte-identical
        {{ start_sum }} as population_start,
        {{ end_sum }} as population_end,
        100.0 * {{ safe_divide(end_sum ~ ' - ' ~ start_sum, start_sum) }} as growth_pct_pooled,
        avg(growth_pct order by municipality_code) filter (where has_growth) as growth_pct_unweighted_mean,
        string_agg(
            exclusion_note
            || case
                when {{ parent_in_group }}
                    then '; its ' || cast(end_year as varchar) || ' population is in the pooled end, as its territory '
                        || 'was in ' || formed_from_code || ' at the start'
                when formed_on is not null then '; left out of the pooled and mean figures'
                else ''
            end,
            '; ' order by municipality_code
        ) filter (where not has_growth) as members_excluded_note
{%- endmacro %}
