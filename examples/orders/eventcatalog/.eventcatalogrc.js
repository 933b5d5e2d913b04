// Rules of the EventCatalog linter (`npm run lint`) for this folder.
// Written once, when absent: yours to edit.
// The event registry knows no owners, so the generated pages have none: the owner-required
// rule (an error by default) is off until you add owners.
module.exports = {
  rules: {
    'best-practices/owner-required': 'off',
  },
};
