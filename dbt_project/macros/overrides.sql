{#- The user's override CSVs (regionstat.config: [seeds] in regionstat.toml or --seed NAME=PATH), validated and
    written normalised by regionstat and named by the vars regionstat_override_<name> (path) and
    regionstat_override_<name>_mode (extend: the user's rows replace the bundled rows with the same key and add
    new ones; replace: only the user's rows). Without the var the bundled seed is used as it is. -#}

{%- macro override_path(name) -%}
    {{- var('regionstat_override_' ~ name, '') -}}
{%- endmacro -%}

{%- macro read_override_csv(name) -%}
    read_csv('{{ override_path(name) | replace("'", "''") }}', header = true, all_varchar = true)
{%- endmacro -%}

{%- macro seed_with_override(name, seed_name, key_columns) -%}
{%- if not override_path(name) -%}
select * from {{ ref(seed_name) }}
{%- else -%}
{%- set columns = adapter.get_columns_in_relation(ref(seed_name)) if execute else [] -%}
with

bundled as (

    select * from {{ ref(seed_name) }}

),

user_rows as (

    select * from {{ read_override_csv(name) }}

)

select bundled.*
from bundled
{% if var('regionstat_override_' ~ name ~ '_mode', 'extend') == 'replace' -%}
where false
{%- else -%}
where not exists (
    select 1
    from user_rows
    where
        {% for key in key_columns -%}
        cast(bundled.{{ key }} as varchar) = user_rows.{{ key }}{% if not loop.last %} and {% endif %}
        {%- endfor %}
)
{%- endif %}

union all

select
    {% for column in columns -%}
    cast(nullif(user_rows."{{ column.name }}", '') as {{ column.data_type }}) as "{{ column.name }}"
    {%- if not loop.last %},{% endif %}
    {% endfor %}
from user_rows
{%- endif -%}
{%- endmacro -%}
