-- Municipal OD rows (residence x workplace x year x sex, 'total' = both sexes), real first: per residence
-- municipality and year ONE source supplies the whole row of the matrix, the first of
--   1. a real municipal OD file (raw.commuting_od, e.g. SCB's ArRegPend2 CSV export for a county's municipalities)
--   2. real TAB1830 (fetched live)
--   3. a synthetic OD file, 4. synthetic TAB1830 (the offline snapshot).
-- One source per residence row keeps each row's sums (employed residents, stayers) from a single matrix.
with

scb_flows as (

    select * from {{ ref('stg_scb__commuting_flows') }}

),

file_flows as (

    select * from {{ ref('stg_municipal__commuting_od') }}
    where region_level = 'municipality' and year is not null

),

scb_by_sex as (

    select
        residence_code,
        workplace_code,
        year,
        sex_code,
        commuters,
        status,
        source_series,
        source_table,
        is_synthetic,
        lineage
    from scb_flows

),

scb_both_sexes as (

    select
        residence_code,
        workplace_code,
        year,
        'total' as sex_code,
        -- ordered aggregate: a fixed summation order keeps rebuilt marts byte-identical
        sum(commuters order by sex_code) as commuters,
        cast(null as varchar) as status,
        max(source_series) as source_series,
        max(source_table) as source_table,
        bool_or(is_synthetic) as is_synthetic,
        {{ lineage_agg('lineage') }} as lineage
    from scb_flows
    group by residence_code, workplace_code, year

),

from_files as (

    select
        residence_code,
        workplace_code,
        year,
        sex_code,
        commuters,
        status,
        'municipal_od_file' as source_series,
        source_table,
        is_synthetic,
        lineage
    from file_flows

),

candidates as (

    select
        *,
        false as from_file
    from scb_by_sex
    union all
    select
        *,
        false as from_file
    from scb_both_sexes
    union all
    select
        *,
        true as from_file
    from from_files

),

source_rank as (

    select
        residence_code,
        year,
        source_table,
        row_number() over (
            partition by residence_code, year
            order by bool_or(is_synthetic) asc, bool_or(from_file) desc, source_table desc
        ) as preference
    from candidates
    group by residence_code, year, source_table

),

chosen as (

    select candidates.*
    from candidates
    inner join source_rank
        on
            candidates.residence_code = source_rank.residence_code
            and candidates.year = source_rank.year
            and candidates.source_table = source_rank.source_table
    where source_rank.preference = 1

)

select
    residence_code,
    workplace_code,
    residence_code = workplace_code as is_stayer,
    year,
    sex_code,
    commuters,
    status,
    source_series,
    source_table,
    is_synthetic,
    lineage
from chosen
