-- SCB's long out-commuting series of the county's municipalities.
select municipality_name as municipality, year, out_commuting_share * 100 as rate, source_series{{ prov }}
from marts.mart_commuting_totals_series
where starts_with(municipality_code, $county)
order by municipality_code, year
