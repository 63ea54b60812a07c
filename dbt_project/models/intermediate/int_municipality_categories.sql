-- Municipality categories per county (DESIGN §4): K1 = the county's largest municipality (latest population),
-- K2 = within var('k2_max_minutes') by car of K1, K3 = the rest. Travel times come from the maintained seed;
-- where one is missing the category falls back to a commuting proxy (same LA region as K1 in la_membership,
-- itself a commuting-based delineation) and says so in `category_basis`.
with

regions as (

    select * from {{ ref('int_population__regions') }}

),

travel_time as (

    select * from {{ ref('municipality_travel_time') }}

),

la_membership as (

    select * from {{ ref('la_membership') }}
    where vintage = {{ var('la_vintage') }}

),

latest_population as (

    select
        region_code as municipality_code,
        county_code,
        year as population_year,
        population
    from regions
    where region_level = 'municipality'
    qualify row_number() over (partition by region_code order by year desc) = 1

),

k1 as (

    select
        county_code,
        municipality_code as k1_municipality_code
    from latest_population
    qualify row_number() over (partition by county_code order by population desc, municipality_code asc) = 1

),

joined as (

    select
        latest_population.municipality_code,
        latest_population.county_code,
        latest_population.population_year,
        latest_population.population,
        k1.k1_municipality_code,
        travel_time.minutes_by_car,
        travel_time.source as travel_time_source,
        own_la.la_region,
        k1_la.la_region as k1_la_region
    from latest_population
    inner join k1
        on latest_population.county_code = k1.county_code
    left join travel_time
        on
            latest_population.municipality_code = travel_time.municipality_code
            and k1.k1_municipality_code = travel_time.k1_municipality_code
    left join la_membership as own_la
        on latest_population.municipality_code = own_la.municipality_code
    left join la_membership as k1_la
        on k1.k1_municipality_code = k1_la.municipality_code

),

final as (

    select
        municipality_code,
        county_code,
        k1_municipality_code,
        population_year,
        population,
        minutes_by_car,
        travel_time_source,
        la_region,
        case
            when municipality_code = k1_municipality_code then 'K1'
            when minutes_by_car is not null and minutes_by_car <= {{ var('k2_max_minutes') }} then 'K2'
            when minutes_by_car is not null then 'K3'
            when la_region is not null and la_region = k1_la_region then 'K2'
            when la_region is not null then 'K3'
        end as category,
        case
            when municipality_code = k1_municipality_code then 'largest_population'
            when minutes_by_car is not null then 'travel_time'
            when la_region is not null then 'commuting_proxy'
        end as category_basis,
        case
            when municipality_code = k1_municipality_code then 'Largest population in the county'
            when minutes_by_car is not null
                then 'Travel time ' || cast(minutes_by_car as varchar) || ' min by car to K1 ('
                    || travel_time_source || ')'
            when la_region is not null
                then 'Commuting proxy, not a travel time: '
                    || case when la_region = k1_la_region then 'same' else 'other' end
                    || ' LA region as K1 (la_membership vintage {{ var("la_vintage") }})'
        end as category_basis_note
    from joined

)

select * from final
