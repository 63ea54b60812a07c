{#-
  Row lineage: which raw batches a row's figures come from, derived from the raw lineage columns, never set by
  hand. Staging gives every row `lineage`, a list with one struct {source_table, source_updated, is_synthetic}
  (the batch's SCB table id or inbox file name, its upstream `updated`, whether it is synthetic). Every model that
  combines rows or joins inputs merges their lists (lineage_agg / lineage_merge); every mart ends with
  provenance_columns(lineage), the four contract columns (docs/CONTRACTS.md):
  is_synthetic, synthetic_inputs, source_tables, source_updated.
-#}

{#- The one-element lineage list of a raw row (used by raw_lineage_columns in staging). -#}
{% macro lineage_from_raw() -%}
[{
            'source_table': _source_table,
            'source_updated': _source_updated,
            'is_synthetic': coalesce(_synthetic, false)
        }]
{%- endmacro %}

{#- Aggregate: the distinct lineage entries of all rows in the group, sorted (deterministic rebuilds). -#}
{% macro lineage_agg(lineage) -%}
list_sort(list_distinct(flatten(list({{ lineage }}))))
{%- endmacro %}

{#- Window aggregate over a partition: the lineage of every row the window reads. -#}
{% macro lineage_window(lineage, partition_by) -%}
list_sort(list_distinct(flatten(list({{ lineage }}) over (partition by {{ partition_by }}))))
{%- endmacro %}

{#- The lineage of a row built from several inputs (a join): null inputs (no match) contribute nothing. -#}
{% macro lineage_merge(lineages) -%}
list_sort(list_distinct(flatten([{{ lineages | join(', ') }}])))
{%- endmacro %}

{#- The four provenance columns every mart ends with. -#}
{% macro provenance_columns(lineage) -%}
coalesce(list_bool_or(list_transform({{ lineage }}, lambda entry: struct_extract(entry, 'is_synthetic'))), false)
            as is_synthetic,
        nullif(array_to_string(list_sort(list_distinct(list_transform(
            list_filter({{ lineage }}, lambda entry: struct_extract(entry, 'is_synthetic')),
            lambda entry: struct_extract(entry, 'source_table')
        ))), ','), '') as synthetic_inputs,
        coalesce(array_to_string(list_sort(list_distinct(list_transform(
            {{ lineage }}, lambda entry: struct_extract(entry, 'source_table')
        ))), ','), '') as source_tables,
        nullif(array_to_string(list_transform(
            list_sort(list_distinct(list_transform(
                list_filter({{ lineage }}, lambda entry: struct_extract(entry, 'source_updated') is not null),
                lambda entry: {
                    'source_table': struct_extract(entry, 'source_table'),
                    'source_updated': struct_extract(entry, 'source_updated')
                }
            ))),
            lambda pair: struct_extract(pair, 'source_table') || '=' || struct_extract(pair, 'source_updated')
        ), ','), '') as source_updated
{%- endmacro %}
