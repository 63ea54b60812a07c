-- Municipality categories per county (docs/design.md §4): K1 = the county's largest municipality (latest population),
-- K2 = within var('k2_max_minutes') by car of K1, K3 = the rest. Travel times come from the maintained seed;
-- where one is missing the category falls back to a commuting proxy from the OD matrix and says so in
-- `category_basis` / `category_basis_note`:
--   K2 if at least var('k2_proxy_min_share_to_k1') of the municipality's employed residents work in K1, or if
--   K1 takes its largest out-commuting flow; else K3.
-- The proxy uses the municipality's latest OD year, both sexes (int_commuting__flows). In the offline snapshot
-- the OD destinations are synthetic, so the proxy is too: see `category_is_synthetic`.
-- A user's own membership file (regionstat.toml [seeds] k2_membership, int_user__k2_membership) comes first:
-- where it names a municipality its category is taken as given (category_basis 'user_membership').
with

regions as (

    select * from {{ ref('int_population__regions') }}

),

travel_time as (

    select * from {{ ref('int_seed__municipality_travel_time') }}

),

user_membership as (

    select * from {{ ref('int_user__k2_membership') }}

),

flows as (

    select * from {{ ref('int_commuting__flows') }}

),

latest_population as (

    select
        region_code as municipality_code,
        county_code,
        year as population_year,
        population,
        lineage
    from regions
    where region_level = 'municipality'
    qualify row_number() over (partition by region_code order by year desc) = 1

),

k1 as (

    select
        county_code,
        municipality_code as k1_municipality_code,
        lineage as k1_lineage
    from latest_population
    qualify row_number() over (partition by county_code order by population desc, municipality_code asc) = 1

),

od_latest as (

    select *
    from flows
    qualify year = max(year) over (partition by residence_code)

),

od_residents as (

    select
        residence_code as municipality_code,
        year as commuting_proxy_year,
        -- ordered aggregate: fixed summation order keeps rebuilds byte-identical
        sum(commuters order by workplace_code) as employed_residents,
        bool_or(is_synthetic) as is_synthetic,
        {{ lineage_agg('lineage') }} as lineage
    from od_latest
    group by residence_code, year

),

od_largest_outflow as (

    select
        residence_code as municipality_code,
        workplace_code as largest_outflow_code
    from od_latest
    where residence_code != workplace_code
    -- same tie-break as int_commuting__municipal_balance
    qualify row_number() over (partition by residence_code order by commuters desc, workplace_code asc) = 1

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
        od_residents.commuting_proxy_year,
        od_residents.employed_residents as commuting_employed_residents,
        case
            when od_residents.municipality_code is not null then coalesce(od_to_k1.commuters, 0)
        end as commuters_to_k1,
        {{ safe_divide('coalesce(od_to_k1.commuters, 0)', 'od_residents.employed_residents') }}
            as commuting_share_to_k1,
        od_largest_outflow.largest_outflow_code,
        user_membership.category as user_category,
        user_membership.source as user_membership_source,
        od_residents.is_synthetic as commuting_is_synthetic,
        -- K1 is the county's largest population: both populations decide it
        {{ lineage_merge(['latest_population.lineage', 'k1.k1_lineage']) }} as population_lineage,
        od_residents.lineage as commuting_lineage
    from latest_population
    inner join k1
        on latest_population.county_code = k1.county_code
    left join travel_time
        on
            latest_population.municipality_code = travel_time.municipality_code
            and k1.k1_municipality_code = travel_time.k1_municipality_code
    left join od_residents
        on latest_population.municipality_code = od_residents.municipality_code
    left join od_latest as od_to_k1
        on
            latest_population.municipality_code = od_to_k1.residence_code
            and k1.k1_municipality_code = od_to_k1.workplace_code
    left join od_largest_outflow
        on latest_population.municipality_code = od_largest_outflow.municipality_code
    left join user_membership
        on latest_population.municipality_code = user_membership.municipality_code

),

classified as (

    select
        *,
        coalesce(
            commuting_share_to_k1 >= {{ var('k2_proxy_min_share_to_k1') }}
            or largest_outflow_code = k1_municipality_code,
            false
        ) as commuting_proxy_is_k2,
        case
            when user_category is not null then 'user_membership'
            when municipality_code = k1_municipality_code then 'largest_population'
            when minutes_by_car is not null then 'travel_time'
            when commuting_share_to_k1 is not null then 'commuting_proxy'
        end as category_basis
    from joined

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
        commuting_proxy_year,
        commuting_employed_residents,
        -- the proxy inputs are shown for every municipality but K1 itself
        case when municipality_code != k1_municipality_code then commuters_to_k1 end as commuters_to_k1,
        case when municipality_code != k1_municipality_code then commuting_share_to_k1 end as commuting_share_to_k1,
        case when municipality_code != k1_municipality_code then largest_outflow_code end as largest_outflow_code,
        case
            when category_basis = 'user_membership' then user_category
            when category_basis = 'largest_population' then 'K1'
            when category_basis = 'travel_time' and minutes_by_car <= {{ var('k2_max_minutes') }} then 'K2'
            when category_basis = 'travel_time' then 'K3'
            when category_basis = 'commuting_proxy' and commuting_proxy_is_k2 then 'K2'
            when category_basis = 'commuting_proxy' then 'K3'
        end as category,
        category_basis,
        case
            when category_basis = 'user_membership'
                then 'Given as ' || user_category || ' in ' || user_membership_source
            when category_basis = 'largest_population' then 'Largest population in the county'
            when category_basis = 'travel_time'
                then 'Travel time ' || cast(minutes_by_car as varchar) || ' min by car to K1 ('
                    || travel_time_source || ')'
            when category_basis = 'commuting_proxy'
                then 'Commuting proxy, not a travel time: '
                    || cast(round(100 * commuting_share_to_k1, 1) as varchar)
                    || ' % of employed residents work in K1 (K2 from '
                    || '{{ (var("k2_proxy_min_share_to_k1") * 100) | round(2) }} %)'
                    || case
                        when largest_outflow_code = k1_municipality_code
                            then '; K1 is the largest out-commuting destination'
                        else '; largest out-commuting destination ' || coalesce(largest_outflow_code, 'none')
                    end
                    || ' (OD ' || cast(commuting_proxy_year as varchar) || ', both sexes)'
                    || case
                        when commuting_is_synthetic
                            then '; the OD matrix is SYNTHETIC in this snapshot, so this proxy is too'
                        else ''
                    end
            else 'No travel time in the seed and no OD flows: category unknown'
        end as category_basis_note,
        coalesce(category_basis = 'commuting_proxy' and commuting_is_synthetic, false) as category_is_synthetic,
        -- what the category rests on: populations (K1), plus the OD matrix where the commuting proxy decided it
        case
            when category_basis = 'commuting_proxy'
                then {{ lineage_merge(['population_lineage', 'commuting_lineage']) }}
            else population_lineage
        end as category_lineage,
        -- every figure in the row: the OD-based proxy inputs are shown for every municipality but K1
        case
            when municipality_code != k1_municipality_code
                then {{ lineage_merge(['population_lineage', 'commuting_lineage']) }}
            else population_lineage
        end as lineage
    from classified

)

select * from final
