package mail

import (
	"fmt"
	"strings"
	"time"
)

// language is what the template functions need to know about a language.
type language struct {
	// date writes t (already in UTC) the way the language does, saying UTC.
	date func(t time.Time) string
	// roles maps Usher's role names to their display names.
	roles map[string]string
}

var languages = map[string]*language{
	"en": {
		date:  func(t time.Time) string { return t.Format("Monday, 2 January 2006 at 15:04 UTC") },
		roles: map[string]string{"owner": "owner", "admin": "admin", "member": "member", "guest": "guest"},
	},
	"ru": {
		// 4 марта 2030 г. в 16:30 по UTC
		date: func(t time.Time) string {
			return fmt.Sprintf("%d %s %d г. в %s по UTC", t.Day(), ruMonthsGenitive[t.Month()-1], t.Year(), t.Format("15:04"))
		},
		roles: map[string]string{"owner": "владелец", "admin": "администратор", "member": "участник", "guest": "гость"},
	},
	"de": {
		// Montag, 4. März 2030, 16:30 Uhr UTC
		date: func(t time.Time) string {
			return fmt.Sprintf("%s, %d. %s %d, %s Uhr UTC", deWeekdays[t.Weekday()], t.Day(), deMonths[t.Month()-1], t.Year(), t.Format("15:04"))
		},
		roles: map[string]string{"owner": "Inhaber", "admin": "Administrator", "member": "Mitglied", "guest": "Gast"},
	},
	"fr": {
		// lundi 4 mars 2030 à 16 h 30 UTC; the first of the month is "1er".
		date: func(t time.Time) string {
			day := fmt.Sprint(t.Day())
			if t.Day() == 1 {
				day = "1er"
			}
			return fmt.Sprintf("%s %s %s %d à %d h %02d UTC", frWeekdays[t.Weekday()], day, frMonths[t.Month()-1], t.Year(), t.Hour(), t.Minute())
		},
		roles: map[string]string{"owner": "propriétaire", "admin": "administrateur", "member": "membre", "guest": "invité"},
	},
	"es": {
		// lunes, 4 de marzo de 2030, a las 16:30 UTC ("a la 1:05" at one o'clock)
		date: func(t time.Time) string {
			at := "a las"
			if t.Hour() == 1 {
				at = "a la"
			}
			return fmt.Sprintf("%s, %d de %s de %d, %s %d:%02d UTC", esWeekdays[t.Weekday()], t.Day(), esMonths[t.Month()-1], t.Year(), at, t.Hour(), t.Minute())
		},
		roles: map[string]string{"owner": "propietario", "admin": "administrador", "member": "miembro", "guest": "invitado"},
	},
}

var (
	ruMonthsGenitive = [12]string{"января", "февраля", "марта", "апреля", "мая", "июня",
		"июля", "августа", "сентября", "октября", "ноября", "декабря"}
	deMonths = [12]string{"Januar", "Februar", "März", "April", "Mai", "Juni",
		"Juli", "August", "September", "Oktober", "November", "Dezember"}
	deWeekdays = [7]string{"Sonntag", "Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag"}
	frMonths   = [12]string{"janvier", "février", "mars", "avril", "mai", "juin",
		"juillet", "août", "septembre", "octobre", "novembre", "décembre"}
	frWeekdays = [7]string{"dimanche", "lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi"}
	esMonths   = [12]string{"enero", "febrero", "marzo", "abril", "mayo", "junio",
		"julio", "agosto", "septiembre", "octubre", "noviembre", "diciembre"}
	esWeekdays = [7]string{"domingo", "lunes", "martes", "miércoles", "jueves", "viernes", "sábado"}
)

// languageFor picks the language of a template directory: "de-at" is
// German; a language Usher does not know is English.
func languageFor(locale string) *language {
	for _, l := range localeCandidates(locale) {
		if lang := languages[l]; lang != nil {
			return lang
		}
	}
	return languages[DefaultLocale]
}

// templateFuncs are the functions the templates of locale may call.
func templateFuncs(locale string) map[string]any {
	lang := languageFor(locale)
	return map[string]any{
		"article": englishArticle,
		// date shows t in UTC; the zero time is "".
		"date": func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return lang.date(t.UTC())
		},
		// role shows Usher's roles translated and any other role as it is.
		"role": func(role string) string {
			if name, ok := lang.roles[strings.ToLower(strings.TrimSpace(role))]; ok {
				return name
			}
			return role
		},
	}
}

// englishArticle returns "a" or "an" for word (good enough for role names).
func englishArticle(word string) string {
	w := strings.ToLower(strings.TrimSpace(word))
	if w == "" {
		return "a"
	}
	for _, p := range []string{"uni", "use", "usu", "one", "eu"} {
		if strings.HasPrefix(w, p) {
			return "a"
		}
	}
	for _, p := range []string{"hour", "honest", "honor", "honour"} {
		if strings.HasPrefix(w, p) {
			return "an"
		}
	}
	if strings.ContainsRune("aeiou", rune(w[0])) {
		return "an"
	}
	return "a"
}
