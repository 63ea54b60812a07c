-- Ortstypologi: every locality gets one class per dimension from the editable seed locality_typology_rules
-- (numeric bands [lower, upper) or a categorical match_value; '__null__' catches missing values), the combined
-- class, the values behind it and the rule text that produced it.
with

inputs as (

    select * from {{ ref('int_localities__typology_inputs') }}

),

rules as (

    select * from {{ ref('locality_typology_rules') }}

),

inputs_long as (

    select
        locality_code,
        'size' as dimension,
        population as numeric_value,
        cast(null as varchar) as text_value,
        cast(null as varchar) as value_basis
    from inputs
    union all
    select
        locality_code,
        'growth' as dimension,
        growth_pct_per_year as numeric_value,
        null as text_value,
        null as value_basis
    from inputs
    union all
    select
        locality_code,
        'density' as dimension,
        density_per_km2 as numeric_value,
        null as text_value,
        null as value_basis
    from inputs
    union all
    select
        locality_code,
        'function' as dimension,
        function_job_ratio as numeric_value,
        null as text_value,
        function_basis as value_basis
    from inputs
    union all
    select
        locality_code,
        'accessibility' as dimension,
        null as numeric_value,
        municipality_category as text_value,
        null as value_basis
    from inputs

),

matched as (

    select
        inputs_long.locality_code,
        inputs_long.dimension,
        inputs_long.numeric_value,
        inputs_long.text_value,
        rules.dimension_order,
        rules.class_code,
        rules.class_name_sv,
        rules.class_name_en,
        rules.dimension || ' = '
        || coalesce(cast(round(inputs_long.numeric_value, 2) as varchar), inputs_long.text_value, 'missing')
        || coalesce(' (' || inputs_long.value_basis || '''s)', '')
        || ' -> ' || rules.class_code || ' ' || rules.class_name_en
        || ' (' || rules.description || ')' as rule_text
    from inputs_long
    inner join rules
        on
            inputs_long.dimension = rules.dimension
            and (
                (
                    inputs_long.numeric_value is not null
                    and rules.match_value is null
                    and (rules.lower_bound is null or inputs_long.numeric_value >= rules.lower_bound)
                    and (rules.upper_bound is null or inputs_long.numeric_value < rules.upper_bound)
                )
                or (inputs_long.text_value is not null and inputs_long.text_value = rules.match_value)
                or (
                    inputs_long.numeric_value is null
                    and inputs_long.text_value is null
                    and rules.match_value = '__null__'
                )
            )
    qualify row_number() over (
            partition by inputs_long.locality_code, inputs_long.dimension order by rules.class_order
        ) = 1

),

pivoted as (

    select
        locality_code,
        string_agg(class_code, '-' order by dimension_order) as typology_code,
        string_agg(class_name_en, ' / ' order by dimension_order) as typology_name_en,
        string_agg(class_name_sv, ' / ' order by dimension_order) as typology_name_sv,
        max(case when dimension = 'size' then class_code end) as size_class,
        max(case when dimension = 'growth' then class_code end) as growth_class,
        max(case when dimension = 'density' then class_code end) as density_class,
        max(case when dimension = 'function' then class_code end) as function_class,
        max(case when dimension = 'accessibility' then class_code end) as accessibility_class,
        string_agg(rule_text, '; ' order by dimension_order) as rule_applied
    from matched
    group by locality_code

),

final as (

    select
        inputs.locality_code,
        inputs.locality_name,
        inputs.municipality_code,
        inputs.year,
        pivoted.typology_code,
        pivoted.typology_name_en,
        pivoted.typology_name_sv,
        pivoted.size_class,
        cast(inputs.population as bigint) as population,
        pivoted.growth_class,
        inputs.previous_year,
        inputs.growth_pct_per_year,
        pivoted.density_class,
        inputs.density_per_km2,
        pivoted.function_class,
        inputs.municipality_job_ratio,
        inputs.employment_year,
        pivoted.accessibility_class,
        inputs.municipality_category,
        inputs.category_basis,
        pivoted.rule_applied,
        inputs.locality_job_ratio,
        inputs.locality_function_year,
        inputs.function_basis,
        {{ provenance_columns('inputs.lineage') }}
    from inputs
    left join pivoted
        on inputs.locality_code = pivoted.locality_code

)

select * from final
