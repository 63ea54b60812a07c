{#-
  Shift-share parts per industry (docs/design.md §5). Sum over industries for the region totals.
  e_ij1/e_ij2 region-industry at base/end year; e_i1/e_i2 reference industry; e1/e2 reference totals;
  e_j1 regional total at base year.
-#}

{#- Dunn national share, industry part: e_ij1 * (e2/e1) - e_ij1 -#}
{% macro shift_share_national(e_ij1, e1, e2) -%}
    ({{ e_ij1 }} * {{ safe_divide(e2, e1) }} - {{ e_ij1 }})
{%- endmacro %}

{#- Dunn industry mix, industry part: e_ij1 * g_i - e_ij1 * (e2/e1) -#}
{% macro shift_share_industry_mix(e_ij1, e_i1, e_i2, e1, e2) -%}
    ({{ e_ij1 }} * {{ safe_divide(e_i2, e_i1) }} - {{ e_ij1 }} * {{ safe_divide(e2, e1) }})
{%- endmacro %}

{#- Dunn regional (competitive) shift, industry part: e_ij1 * (g_ij - g_i) = e_ij2 - e_ij1 * g_i -#}
{% macro shift_share_regional(e_ij1, e_ij2, e_i1, e_i2) -%}
    ({{ e_ij2 }} - {{ e_ij1 }} * {{ safe_divide(e_i2, e_i1) }})
{%- endmacro %}

{#- Esteban-Marquillas homothetic employment ê_ij = e_j1 * e_i1 / e1 -#}
{% macro shift_share_homothetic(e_j1, e_i1, e1) -%}
    ({{ e_j1 }} * {{ safe_divide(e_i1, e1) }})
{%- endmacro %}

{#- Esteban-Marquillas competitive effect, industry part: ê_ij * (g_ij - g_i) -#}
{% macro shift_share_em_competitive(e_hat, e_ij1, e_ij2, e_i1, e_i2) -%}
    ({{ e_hat }} * ({{ safe_divide(e_ij2, e_ij1) }} - {{ safe_divide(e_i2, e_i1) }}))
{%- endmacro %}

{#- Esteban-Marquillas allocation effect, industry part: (e_ij1 - ê_ij) * (g_ij - g_i) -#}
{% macro shift_share_em_allocation(e_hat, e_ij1, e_ij2, e_i1, e_i2) -%}
    (({{ e_ij1 }} - {{ e_hat }}) * ({{ safe_divide(e_ij2, e_ij1) }} - {{ safe_divide(e_i2, e_i1) }}))
{%- endmacro %}

{#-
  CTEs shared by the shift-share marts: base, pivoted, with_totals, reference, parts (one row per region x SNI
  group, unrounded industry parts). The caller writes `with {{ shift_share_parts_ctes(ref(...)) }}, final as (...)`.
-#}
{% macro shift_share_parts_ctes(relation) %}
{%- set base_year = var('shift_share_base_year') -%}
{%- set end_year = var('shift_share_end_year') -%}
{%- set reference = var('shift_share_reference_region') -%}
base as (

    select * from {{ relation }}
    where
        basis = '{{ var("employment_basis") }}'
        and year in ({{ base_year }}, {{ end_year }})

),

pivoted as (

    select
        region_code,
        region_level,
        sni_group_code,
        -- ordered aggregates: a fixed summation order keeps rebuilt marts byte-identical
        sum(case when year = {{ base_year }} then employed end order by year) as employed_base,
        sum(case when year = {{ end_year }} then employed end order by year) as employed_end,
        max(case when year = {{ base_year }} then source_series end) as source_series_base,
        max(case when year = {{ end_year }} then source_series end) as source_series_end,
        bool_or(is_synthetic) as is_synthetic,
        {{ lineage_agg('lineage') }} as lineage
    from base
    group by region_code, region_level, sni_group_code

),

with_totals as (

    select
        *,
        sum(employed_base order by sni_group_code) over (partition by region_code) as region_total_base,
        sum(employed_end order by sni_group_code) over (partition by region_code) as region_total_end
    from pivoted

),

reference as (

    select * from with_totals
    where region_code = '{{ reference }}'

),

parts as (

    select
        with_totals.region_code,
        with_totals.region_level,
        with_totals.sni_group_code,
        {{ base_year }} as base_year,
        {{ end_year }} as end_year,
        '{{ reference }}' as reference_region,
        '{{ var("employment_basis") }}' as basis,
        with_totals.employed_base,
        with_totals.employed_end,
        with_totals.employed_end - with_totals.employed_base as growth,
        {{ shift_share_national('with_totals.employed_base', 'reference.region_total_base',
                                'reference.region_total_end') }} as national_share,
        {{ shift_share_industry_mix('with_totals.employed_base', 'reference.employed_base', 'reference.employed_end',
                                    'reference.region_total_base', 'reference.region_total_end') }} as industry_mix,
        {{ shift_share_regional('with_totals.employed_base', 'with_totals.employed_end',
                                'reference.employed_base', 'reference.employed_end') }} as regional_shift,
        {{ shift_share_homothetic('with_totals.region_total_base', 'reference.employed_base',
                                  'reference.region_total_base') }} as em_homothetic_base,
        {{ shift_share_em_competitive(
            shift_share_homothetic('with_totals.region_total_base', 'reference.employed_base',
                                   'reference.region_total_base'),
            'with_totals.employed_base', 'with_totals.employed_end',
            'reference.employed_base', 'reference.employed_end') }} as em_competitive,
        {{ shift_share_em_allocation(
            shift_share_homothetic('with_totals.region_total_base', 'reference.employed_base',
                                   'reference.region_total_base'),
            'with_totals.employed_base', 'with_totals.employed_end',
            'reference.employed_base', 'reference.employed_end') }} as em_allocation,
        with_totals.source_series_base,
        with_totals.source_series_end,
        coalesce(with_totals.source_series_base, '') != coalesce(with_totals.source_series_end, '')
            as crosses_series_break,
        with_totals.is_synthetic or reference.is_synthetic as is_synthetic,
        {{ lineage_merge(['with_totals.lineage', 'reference.lineage']) }} as lineage
    from with_totals
    inner join reference
        on with_totals.sni_group_code = reference.sni_group_code
    where with_totals.region_code != '{{ reference }}'

)
{%- endmacro %}
