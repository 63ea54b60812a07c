{#- Region level from an SCB region code: '00' Sweden, 2 digits county, 4 digits municipality. -#}
{% macro region_level(code) -%}
    case
        when {{ code }} = '00' then 'country'
        when length({{ code }}) = 2 then 'county'
        when length({{ code }}) = 4 then 'municipality'
        else 'other'
    end
{%- endmacro %}
