-- Key figures, Kolada-like: one row per indicator, region and period, with unit, source and definition, so that
-- Linköping, Norrköping, the county, Sweden and the peer groups can be compared over time. Two kinds of rows:
--   * ksi2242: Linköping kommun's quarterly KS indicators (inbox file); cells marked '..' (not available) are
--     left out, '-' (nil) cells stay with a null value; regions the seed does not publish (Plus4, whose values
--     in the file are wrong) stay in raw only;
--   * regionstat's own annual series, each row one row of the named mart (its provenance passed through):
--     population (fct_population), commuting across the municipal border (mart_commuting_totals_series) and the
--     employed day/night population (fct_employment_by_sector, only where real, never its synthetic rows).
-- Where both give the same concept (population: ksi2242 Befolkning in Q4 = population on 31 December) both rows
-- are kept, each with its source_table; tests/test_key_figures.py checks that they agree.
with

ksi as (

    select * from {{ ref('stg_municipal__key_indicators') }}
    where indicator_value is not null or status is distinct from '..'

),

indicators as (

    select * from {{ ref('key_figure_indicators') }}

),

ksi_regions as (

    select * from {{ ref('key_figure_regions') }}

),

municipalities as (

    select * from {{ ref('municipalities') }}

),

counties as (

    select * from {{ ref('counties') }}

),

population as (

    select * from {{ ref('fct_population') }}

),

commuting as (

    select * from {{ ref('mart_commuting_totals_series') }}

),

employment as (

    select * from {{ ref('fct_employment_by_sector') }}
    where
        is_all_industries and sex_code = 'total' and not is_synthetic
        -- districts (municipal files) are not regions of this mart
        and region_level in ('country', 'county', 'municipality')

),

ksi_rows as (

    select
        ksi.indicator_code,
        ksi.region_code,
        ksi_regions.region_kind,
        ksi.year,
        ksi.quarter,
        ksi.indicator_value as value,
        ksi.status,
        'ksi2242' as source_table,
        {{ provenance_columns('ksi.lineage') }}
    from ksi
    left join ksi_regions
        on ksi.region_code = ksi_regions.region_code
    where coalesce(ksi_regions.published, true)

),

population_rows as (

    select
        'population' as indicator_code,
        region_code,
        region_level as region_kind,
        year,
        cast(null as varchar) as quarter,
        cast(population as double) as value,
        status,
        'fct_population' as source_table,
        is_synthetic,
        synthetic_inputs,
        source_tables,
        source_updated
    from population

),

commuting_rows as (

    {% for measure in ['in_commuters', 'out_commuters', 'stayers', 'employed_residents'] %}
        select
            '{{ measure }}' as indicator_code,
            municipality_code as region_code,
            'municipality' as region_kind,
            year,
            cast(null as varchar) as quarter,
            cast({{ measure }} as double) as value,
            cast(null as varchar) as status,
            'mart_commuting_totals_series' as source_table,
            is_synthetic,
            synthetic_inputs,
            source_tables,
            source_updated
        from commuting
        where {{ measure }} is not null
        {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

employment_rows as (

    select
        'employed_' || basis as indicator_code,
        region_code,
        region_level as region_kind,
        year,
        cast(null as varchar) as quarter,
        cast(employed as double) as value,
        status,
        'fct_employment_by_sector' as source_table,
        is_synthetic,
        synthetic_inputs,
        source_tables,
        source_updated
    from employment

),

unioned as (

    select * from ksi_rows
    union all
    select * from population_rows
    union all
    select * from commuting_rows
    union all
    select * from employment_rows

),

final as (

    select
        unioned.indicator_code,
        coalesce(indicators.indicator_name, unioned.indicator_code) as indicator_name,
        indicators.indicator_name_sv,
        coalesce(indicators.unit, 'unknown') as unit,
        indicators.indicator_kind,
        indicators.definition,
        unioned.region_code,
        coalesce(
            ksi_regions.region_name,
            case when unioned.region_code = '00' then 'Sweden' end,
            counties.county_name_en,
            municipalities.municipality_name
        ) as region_name,
        coalesce(ksi_regions.region_kind, unioned.region_kind) as region_kind,
        unioned.year,
        unioned.quarter,
        unioned.year || coalesce(unioned.quarter, '') as period,
        case when unioned.quarter is null then 'year' else 'quarter' end as frequency,
        indicators.reference_time,
        unioned.value,
        unioned.status,
        unioned.source_table,
        unioned.is_synthetic,
        unioned.synthetic_inputs,
        unioned.source_tables,
        unioned.source_updated
    from unioned
    left join indicators
        on unioned.indicator_code = indicators.indicator_code
    left join ksi_regions
        on unioned.region_code = ksi_regions.region_code
    left join counties
        on unioned.region_code = counties.county_code
    left join municipalities
        on unioned.region_code = municipalities.municipality_code

)

select * from final
