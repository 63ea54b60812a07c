-- The values behind the locality typology, one row per locality at its latest delineation year:
-- size (population), growth (annualised % since the previous delineation), density (inhabitants per km2),
-- function (the municipality's jobs per employed resident, day/night population, as context: SCB publishes no
-- locality jobs here) and accessibility (the municipality's K1/K2/K3 category).
with

locality_values as (

    select * from {{ ref('int_localities__values') }}

),

locality_names as (

    select * from {{ ref('int_seed__locality_names') }}

),

categories as (

    select * from {{ ref('int_municipality_categories') }}

),

employment as (

    select * from {{ ref('int_employment__sector_base') }}
    where region_level = 'municipality'

),

job_ratio_by_year as (

    select
        region_code as municipality_code,
        year as employment_year,
        -- ordered aggregates: a fixed summation order keeps rebuilt marts byte-identical
        {{ safe_divide("sum(case when basis = 'day' then employed end order by sni_group_code)",
                       "sum(case when basis = 'night' then employed end order by sni_group_code)") }} as job_ratio,
        {{ lineage_agg('lineage') }} as lineage
    from employment
    group by region_code, year

),

district_function as (

    select * from {{ ref('int_localities__district_function') }}

),

latest as (

    select *
    from locality_values
    where is_latest_of_key  -- a code renumbered since is the same locality, not another one

),

with_job_ratio as (

    select
        latest.locality_code,
        job_ratio_by_year.employment_year,
        job_ratio_by_year.job_ratio,
        job_ratio_by_year.lineage
    from latest
    inner join job_ratio_by_year
        on latest.municipality_code = job_ratio_by_year.municipality_code
    -- the employment year closest to the delineation year
    qualify row_number() over (
            partition by latest.locality_code
            order by abs(job_ratio_by_year.employment_year - latest.year), job_ratio_by_year.employment_year desc
        ) = 1

),

own_function as (

    select
        latest.locality_code,
        district_function.year as function_year,
        district_function.job_ratio,
        district_function.lineage
    from latest
    inner join district_function
        on latest.locality_key = district_function.locality_code
    where district_function.job_ratio is not null
    -- the commuting year closest to the delineation year
    qualify row_number() over (
            partition by latest.locality_code
            order by abs(district_function.year - latest.year), district_function.year desc
        ) = 1

),

final as (

    select
        latest.locality_code,
        locality_names.locality_name,
        latest.municipality_code,
        latest.year,
        latest.population,
        latest.previous_year,
        latest.previous_population,
        100.0 * (
            power(
                {{ safe_divide('latest.population', 'latest.previous_population') }},
                1.0 / nullif(latest.year - latest.previous_year, 0)
            ) - 1
        ) as growth_pct_per_year,
        latest.land_area_km2,
        latest.density_per_km2,
        with_job_ratio.job_ratio as municipality_job_ratio,
        with_job_ratio.employment_year,
        own_function.job_ratio as locality_job_ratio,
        own_function.function_year as locality_function_year,
        -- the function value: the locality's own where its districts are known, else the municipality's
        coalesce(own_function.job_ratio, with_job_ratio.job_ratio) as function_job_ratio,
        case
            when own_function.job_ratio is not null then 'locality'
            when with_job_ratio.job_ratio is not null then 'municipality'
        end as function_basis,
        categories.category as municipality_category,
        categories.category_basis,
        -- the locality's own figures, the municipality's job ratio and the inputs behind its category
        -- (the municipality's job ratio is shown next to the locality's own, so its inputs count either way)
        {{ lineage_merge(['latest.lineage', 'with_job_ratio.lineage', 'own_function.lineage',
                          'categories.category_lineage']) }} as lineage
    from latest
    left join locality_names
        on latest.locality_code = locality_names.locality_code
    left join with_job_ratio
        on latest.locality_code = with_job_ratio.locality_code
    left join own_function
        on latest.locality_code = own_function.locality_code
    left join categories
        on latest.municipality_code = categories.municipality_code

)

select * from final
