-- PE12-shaped municipal files (Linköping's in- and out-commuting by district, 1994-): one row per municipality or
-- district and year, the file's flow types (In/Ut/Netto) x areas (Annan/Samma/Tot/Lika/Totkn) pivoted to columns.
-- The row whose district code is the municipality code ('0580', "Hela kommunen") is the whole municipality; per
-- the PX notes and the cross-check with SCB's TAB3267/3266/5839, its In/Annan = in-commuters over the municipal
-- border, Ut/Annan = out-commuters, Netto/Annan = in minus out, Totkn = live and work in the municipality.
-- The municipality comes from the raw `municipality` column when the loader provides it, else from the file's
-- own whole-municipality row (the one 4-digit district code of the file), never from a constant. One file per
-- municipality and year supplies the rows (the newest real one), so two exports never mix.
{%- set stg_columns = [] %}
{%- if execute %}
    {%- set stg_columns = adapter.get_columns_in_relation(ref('stg_municipal__commuting'))
        | map(attribute='name') | map('lower') | list %}
{%- endif %}
{%- set from_file = "max(case when length(district) = 4 then district end) over (partition by source_table)" %}
with

commuting as (

    select * from {{ ref('stg_municipal__commuting') }}

),

with_municipality as (

    select
        *,
        {{ 'coalesce(municipality, ' ~ from_file ~ ')' if 'municipality' in stg_columns else from_file }}
            as municipality_code
    from commuting

),

-- two files covering the same municipality and year (a re-export under another name): the newest real one
file_rank as (

    select
        municipality_code,
        year,
        source_table,
        row_number() over (
            partition by municipality_code, year
            order by bool_or(is_synthetic) asc, max(loaded_at) desc, source_table desc
        ) as preference
    from with_municipality
    where municipality_code is not null and year is not null
    group by municipality_code, year, source_table

),

chosen as (

    select with_municipality.*
    from with_municipality
    inner join file_rank
        on
            with_municipality.municipality_code = file_rank.municipality_code
            and with_municipality.year = file_rank.year
            and with_municipality.source_table = file_rank.source_table
    where file_rank.preference = 1

),

pivoted as (

    select
        municipality_code,
        district as area_code,
        case
            when district = municipality_code then 'municipality'
            else 'district'
        end as area_level,
        year,
        max(case when flow_type = 'In' and area = 'Annan' then persons end) as in_from_other_municipalities,
        max(case when flow_type = 'In' and area = 'Samma' then persons end) as in_from_same_municipality,
        max(case when flow_type = 'In' and area = 'Tot' then persons end) as in_total,
        max(case when flow_type = 'Ut' and area = 'Annan' then persons end) as out_to_other_municipalities,
        max(case when flow_type = 'Ut' and area = 'Samma' then persons end) as out_to_same_municipality,
        max(case when flow_type = 'Ut' and area = 'Tot' then persons end) as out_total,
        max(case when flow_type = 'Netto' and area = 'Annan' then persons end) as net_other_municipalities,
        max(case when flow_type = 'Netto' and area = 'Tot' then persons end) as net_total,
        max(case when flow_type = 'In' and area = 'Lika' then persons end) as live_and_work_in_area,
        -- Totkn: In = jobs in the area held by residents of the municipality; Ut = residents of the area who
        -- work in the municipality (equal for the whole municipality from 2001; 1994-2000 differ by <= 116)
        max(case when flow_type = 'In' and area = 'Totkn' then persons end) as jobs_held_by_municipal_residents,
        max(case when flow_type = 'Ut' and area = 'Totkn' then persons end) as residents_working_in_municipality,
        max(source_table) as source_table,
        bool_or(is_synthetic) as is_synthetic,
        {{ lineage_agg('lineage') }} as lineage
    from chosen
    group by municipality_code, district, year

)

select * from pivoted
