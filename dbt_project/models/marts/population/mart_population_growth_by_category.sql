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

formation as (

    select * from {{ ref('municipality_formation') }}

),

municipality_names as (

    select
        municipality_code,
        municipality_name
    from {{ ref('municipalities') }}

),

population as (

    select * from {{ ref('int_population__by_area') }}
    where area_type = 'municipality'

),

periods as (

    select distinct
        horizon_label,
        horizon_years,
        start_year,
        end_year
    from growth

),

-- every categorised municipality for every period, with its growth where it has data in both years
member_periods as (

    select
        categories.municipality_code,
        categories.county_code,
        categories.category,
        categories.category_basis,
        categories.category_is_synthetic,
        categories.category_lineage,
        periods.horizon_label,
        periods.horizon_years,
        periods.start_year,
        periods.end_year,
        growth.area_code is not null as has_growth,
        growth.population_start,
        growth.population_end,
        growth.growth_pct,
        growth.lineage as growth_lineage,
        -- formed during the period: no start figure; its territory is in the start figure of formed_from_code
        formation.formed_from_code,
        formation.formed_on,
        end_population.population as population_end_if_formed,
        end_population.lineage as end_lineage_if_formed
    from categories
    cross join periods
    left join growth
        on
            categories.municipality_code = growth.area_code
            and periods.horizon_label = growth.horizon_label
            and periods.end_year = growth.end_year
    left join formation
        on
            categories.municipality_code = formation.municipality_code
            and periods.start_year < formation.first_population_year
            and periods.end_year >= formation.first_population_year
    left join population as end_population
        on
            formation.municipality_code = end_population.area_code
            and periods.end_year = end_population.year

),

-- a member formed during the period whose parent is in the same group (with data in both years) has its end
-- population added to the group's pooled end: the parent's start figure held its territory
with_parent as (

    select
        child.*,
        parent.has_growth and parent.county_code = child.county_code as parent_in_county,
        parent.has_growth and parent.category = child.category as parent_in_category,
        municipality_names.municipality_name,
        parent_names.municipality_name as parent_name
    from member_periods as child
    left join member_periods as parent
        on
            child.formed_from_code = parent.municipality_code
            and child.horizon_label = parent.horizon_label
            and child.end_year = parent.end_year
    left join municipality_names
        on child.municipality_code = municipality_names.municipality_code
    left join municipality_names as parent_names
        on child.formed_from_code = parent_names.municipality_code

),

members as (

    select
        *,
        -- the growth figures and the category that groups them
        {{ lineage_merge(['growth_lineage', 'category_lineage']) }} as lineage,
        case
            when not has_growth
                then municipality_code || ' ' || coalesce(municipality_name, '') || ': '
                    || case
                        when formed_on is not null
                            then 'formed ' || strftime(formed_on, '%Y-%m-%d') || ' from ' || formed_from_code || ' '
                                || coalesce(parent_name, '') || ', no population for ' || cast(start_year as varchar)
                        else 'no population for ' || cast(start_year as varchar) || ' or ' || cast(end_year as varchar)
                    end
        end as exclusion_note
    from with_parent

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
        count(*) filter (where has_growth) as members,
        count(*) filter (where not has_growth) as members_excluded,
        {{ pooled_with_formed('parent_in_county') }},
        cast(null as varchar) as category,
        string_agg(distinct category_basis, ', ' order by category_basis) filter (where has_growth) as category_basis,
        bool_or(category_is_synthetic) filter (where has_growth) as category_is_synthetic,
        {{ lineage_agg("case when has_growth then lineage when parent_in_county then end_lineage_if_formed end") }}
            as lineage
    from members
    group by county_code, horizon_label, horizon_years, start_year, end_year
    having count(*) filter (where has_growth) > 0

    union all

    select
        county_code,
        'category' as group_type,
        category as group_code,
        horizon_label,
        horizon_years,
        start_year,
        end_year,
        count(*) filter (where has_growth) as members,
        count(*) filter (where not has_growth) as members_excluded,
        {{ pooled_with_formed('parent_in_category') }},
        category,
        string_agg(distinct category_basis, ', ' order by category_basis) filter (where has_growth) as category_basis,
        bool_or(category_is_synthetic) filter (where has_growth) as category_is_synthetic,
        {{ lineage_agg("case when has_growth then lineage when parent_in_category then end_lineage_if_formed end") }}
            as lineage
    from members
    where category is not null
    group by county_code, category, horizon_label, horizon_years, start_year, end_year
    having count(*) filter (where has_growth) > 0

    union all

    select
        county_code,
        'municipality' as group_type,
        municipality_code as group_code,
        horizon_label,
        horizon_years,
        start_year,
        end_year,
        1 as members,
        0 as members_excluded,
        -- the same column order as pooled_with_formed() in the group rows above (union all is positional)
        population_start,
        population_end,
        growth_pct as growth_pct_pooled,
        growth_pct as growth_pct_unweighted_mean,
        cast(null as varchar) as members_excluded_note,
        category,
        category_basis,
        category_is_synthetic,
        lineage
    from members
    where has_growth

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
        members_excluded,
        members_excluded_note,
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
