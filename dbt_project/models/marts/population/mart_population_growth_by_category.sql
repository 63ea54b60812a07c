-- County, K1, K2 and K3 population growth: pooled (sum of members) and the unweighted mean of the members'
-- growth rates, plus one row per municipality showing its category and the basis of that category.
-- Population counts are published as bigint; category_is_synthetic flags groups whose membership rests on a
-- commuting proxy computed from the (offline snapshot's synthetic) OD matrix.
with

growth as (

    select * from {{ ref('int_population__growth') }}
    where area_type = 'municipality'

),

categories as (

    select * from {{ ref('int_municipality_categories') }}

),

members as (

    select
        growth.* exclude (lineage),
        -- the growth figures and the category that groups them
        {{ lineage_merge(['growth.lineage', 'categories.category_lineage']) }} as lineage,
        categories.county_code,
        categories.category,
        categories.category_basis,
        categories.category_is_synthetic
    from growth
    inner join categories
        on growth.area_code = categories.municipality_code

),

grouped as (

    select
        county_code,
        'county' as group_type,
        county_code as group_code,
        horizon_label,
        horizon_years,
        start_year,
        end_year,
        count(*) as members,
        -- ordered aggregates: floating-point sums in a fixed order keep rebuilt marts byte-identical
        sum(population_start order by area_code) as population_start,
        sum(population_end order by area_code) as population_end,
        100.0 * {{ safe_divide('sum(population_end order by area_code) - sum(population_start order by area_code)',
                               'sum(population_start order by area_code)') }} as growth_pct_pooled,
        avg(growth_pct order by area_code) as growth_pct_unweighted_mean,
        cast(null as varchar) as category,
        string_agg(distinct category_basis, ', ' order by category_basis) as category_basis,
        bool_or(category_is_synthetic) as category_is_synthetic,
        {{ lineage_agg('lineage') }} as lineage
    from members
    group by county_code, horizon_label, horizon_years, start_year, end_year

    union all

    select
        county_code,
        'category' as group_type,
        category as group_code,
        horizon_label,
        horizon_years,
        start_year,
        end_year,
        count(*) as members,
        -- ordered aggregates: floating-point sums in a fixed order keep rebuilt marts byte-identical
        sum(population_start order by area_code) as population_start,
        sum(population_end order by area_code) as population_end,
        100.0 * {{ safe_divide('sum(population_end order by area_code) - sum(population_start order by area_code)',
                               'sum(population_start order by area_code)') }} as growth_pct_pooled,
        avg(growth_pct order by area_code) as growth_pct_unweighted_mean,
        category,
        string_agg(distinct category_basis, ', ' order by category_basis) as category_basis,
        bool_or(category_is_synthetic) as category_is_synthetic,
        {{ lineage_agg('lineage') }} as lineage
    from members
    where category is not null
    group by county_code, category, horizon_label, horizon_years, start_year, end_year

    union all

    select
        county_code,
        'municipality' as group_type,
        area_code as group_code,
        horizon_label,
        horizon_years,
        start_year,
        end_year,
        1 as members,
        population_start,
        population_end,
        growth_pct as growth_pct_pooled,
        growth_pct as growth_pct_unweighted_mean,
        category,
        category_basis,
        category_is_synthetic,
        lineage
    from members

),

final as (

    select
        county_code,
        group_type,
        group_code,
        horizon_label,
        horizon_years,
        start_year,
        end_year,
        members,
        cast(population_start as bigint) as population_start,
        cast(population_end as bigint) as population_end,
        growth_pct_pooled,
        growth_pct_unweighted_mean,
        category,
        category_basis,
        category_is_synthetic,
        {{ provenance_columns('lineage') }}
    from grouped

)

select * from final
