{#-
  Regional-economics formulas (docs/design.md §5). Each macro returns a SQL expression; arguments are SQL expressions.
  e_ij employment in industry i, region j; e_j regional total; e_i reference total; e reference all.
  The aggregate macros take `order_by`, a key unique within the group (e.g. the SNI group code): floating-point
  sums are then always taken in the same order, so rebuilding the same data gives byte-identical marts.
-#}

{% macro safe_divide(numerator, denominator) -%}
    (cast({{ numerator }} as double) / nullif(cast({{ denominator }} as double), 0))
{%- endmacro %}

{#- LQ_ij = (e_ij / e_j) / (e_i / e) -#}
{% macro location_quotient(e_ij, e_j, e_i, e) -%}
    {{ safe_divide(safe_divide(e_ij, e_j), safe_divide(e_i, e)) }}
{%- endmacro %}

{#- Aggregate: K_j = sum_i |s_ij - s_i| (0-2). Use with group by region. -#}
{% macro krugman(region_share, reference_share, order_by) -%}
    sum(abs({{ region_share }} - {{ reference_share }}) order by {{ order_by }})
{%- endmacro %}

{#- Aggregate: Hoover = 1/2 sum_i |s_ij - s_i| (0-1). -#}
{% macro hoover(region_share, reference_share, order_by) -%}
    (0.5 * sum(abs({{ region_share }} - {{ reference_share }}) order by {{ order_by }}))
{%- endmacro %}

{#- Aggregate: G = 2 / (n^2 * mean(R)) * sum_lambda lambda * (R_(lambda) - mean(R)), LQs ranked ascending.
    lq_rank is the ascending rank (1..n) of the LQ (ties broken by a unique key), lq_mean the mean LQ over the
    region's n industries. -#}
{% macro gini_specialisation(lq, lq_rank, lq_mean, order_by) -%}
    {{ safe_divide('2.0 * sum(' ~ lq_rank ~ ' * (' ~ lq ~ ' - ' ~ lq_mean ~ ') order by ' ~ order_by ~ ')',
                   'count(' ~ lq ~ ') * count(' ~ lq ~ ') * any_value(' ~ lq_mean ~ ')') }}
{%- endmacro %}

{#- Aggregate: H = sum_i s_i^2 -#}
{% macro herfindahl(share, order_by) -%}
    sum({{ share }} * {{ share }} order by {{ order_by }})
{%- endmacro %}

{#- Normalised Herfindahl (H - 1/n) / (1 - 1/n) -#}
{% macro herfindahl_normalised(h, n) -%}
    {{ safe_divide('(' ~ h ~ ') - 1.0 / (' ~ n ~ ')', '1.0 - 1.0 / (' ~ n ~ ')') }}
{%- endmacro %}

{#- Equivalent number of equally sized industries 1/H -#}
{% macro herfindahl_equivalent_number(h) -%}
    {{ safe_divide('1.0', h) }}
{%- endmacro %}

{#- Round a published index; 7 decimals as in the reference values in docs/design.md §5. -#}
{% macro round_index(expression, decimals=7) -%}
    round({{ expression }}, {{ decimals }})
{%- endmacro %}
