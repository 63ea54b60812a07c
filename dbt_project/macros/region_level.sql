{#- Region level from an SCB region code: '00' Sweden, 2 digits county, 4 digits municipality. -#}
{% macro region_level(code) -%}
    case
        when {{ code }} = '00' then 'country'
        when length({{ code }}) = 2 then 'county'
        when length({{ code }}) = 4 then 'municipality'
        else 'other'
    end
{%- endmacro %}

{#- County of an SCB region code: a municipality's first two digits, a county itself; null for Sweden. -#}
{% macro county_code(code) -%}
    case
        when length({{ code }}) = 4 then left({{ code }}, 2)
        when length({{ code }}) = 2 and {{ code }} != '00' then {{ code }}
    end
{%- endmacro %}
