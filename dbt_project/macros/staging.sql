{#- Shared pieces of the staging models over raw.* (one place for the lineage columns and the series join). -#}

{% macro raw_lineage_columns() -%}
status,
        _source_name as source_name,
        _source_table as source_table,
        _load_id as load_id,
        _synthetic as is_synthetic,
        _loaded_at as loaded_at,
        _source_updated as source_updated,
        {{ lineage_from_raw() }} as lineage
{%- endmacro %}

{% macro select_with_source_series(relation) -%}
select
        {{ relation }}.*,
        series_breaks.source_series
    from {{ relation }}
    left join series_breaks
        on
            {{ relation }}.source_table = series_breaks.source_table
            and {{ relation }}.year between series_breaks.year_from and coalesce(series_breaks.year_to, 9999)
{%- endmacro %}
