{#-
  Every mart row's provenance columns agree with each other and with the raw batches (docs/CONTRACTS.md):
  is_synthetic and source_tables are never null, is_synthetic is true exactly when synthetic_inputs is set,
  every synthetic input is one of the row's source tables, and a source table whose live raw batch is synthetic
  is always listed among the synthetic inputs (a row built from it can never pass as real).
-#}
{% test provenance_is_consistent(model) %}
{%- set raw_relations = [] -%}
{%- if execute -%}
    {%- for node in graph.sources.values() -%}
        {%- do raw_relations.append(api.Relation.create(
            database=node.database, schema=node.schema, identifier=node.identifier)) -%}
    {%- endfor -%}
{%- endif %}
with

synthetic_tables as (

    select cast(null as varchar) as source_table where false
    {%- for relation in raw_relations %}
    union
    select distinct _source_table as source_table from {{ relation }} where _synthetic
    {%- endfor %}

),

mart_rows as (

    select
        is_synthetic,
        synthetic_inputs,
        source_tables,
        string_split(source_tables, ',') as tables,
        coalesce(string_split(synthetic_inputs, ','), []) as synthetic
    from {{ model }}

)

select *
from mart_rows
where
    is_synthetic is null
    or source_tables is null
    or is_synthetic != (synthetic_inputs is not null)
    or not list_has_all(tables, synthetic)
    or exists (
        select 1 from synthetic_tables
        where list_contains(mart_rows.tables, synthetic_tables.source_table)
        and not list_contains(mart_rows.synthetic, synthetic_tables.source_table)
    )
{% endtest %}
